package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.vhostblk.modules.reduce.Sync.ok;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReduceCommandTest {

    static final int BS = 4096;

    @TempDir
    Path dir;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        out.reset();
        err.reset();
        return new ReduceCommand(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8))
                .run(List.of(args));
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    /** Bytes the file really occupies on disk (st_blocks), as du shows it. */
    private static long allocated(Path file) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("du", "--block-size=1", file.toString()).redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "du did not finish");
        String line = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, p.exitValue(), line);
        return Long.parseLong(line.split("\\s+")[0]);
    }

    @Test
    void formatCheckStatsOnAFreshImage() throws Exception {
        Path image = dir.resolve("vol.img");
        assertEquals(0, run("format", image.toString(), "--logical-size", "64M"), err());
        assertTrue(out().contains("logical size 67108864 bytes"), out());
        assertTrue(allocated(image) < 4L << 20, "sparse: only metadata is allocated");
        assertEquals(0, run("check", image.toString()), out() + err());
        assertTrue(out().contains("clean"), out());
        assertEquals(0, run("stats", image.toString()), err());
        assertTrue(out().contains("logical_bytes: 67108864"), out());
        assertTrue(out().contains("physical_bytes_used: 0"), out());
        long dataArea = Long.parseLong(out().lines().filter(l -> l.startsWith("data_area_bytes: ")).findFirst().orElseThrow().substring(17));
        assertTrue(dataArea >= 64L << 20 && dataArea < (64L << 20) + (1 << 20),
                "the default physical size holds every logical block uncompressed, and little more: " + dataArea);
        assertEquals(1, run("format", image.toString(), "--logical-size", "64M"));
        assertTrue(err().contains("already holds a reduce volume"), err());
        assertEquals(0, run("format", image.toString(), "--logical-size", "32M", "--force", "--codec", "zstd"), err());
    }

    @Test
    void savingsShowInStatsAndInTheFilesAllocatedSize() throws Exception {
        Path image = dir.resolve("vol.img");
        assertEquals(0, run("format", image.toString(), "--logical-size", "16M"), err());
        long before = allocated(image);
        byte[] same = ReduceVolumeTest.random(5, BS);
        try (FileBackingStore store = FileBackingStore.open(image, false);
             ReduceVolume v = ReduceVolume.open(store, image.toString(), ReduceVolume.Options.both())) {
            for (int i = 0; i < 256; i++) {
                ok(Sync.write(v, (long) i * BS, same));                                        // 1 MiB of one block
                ok(Sync.write(v, (512L + i) * BS, ReduceVolumeTest.random(1000 + i, BS)));    // 1 MiB of noise
            }
            // 1 MiB of text in 64 KiB writes, as writeback sends it: fragments of one request share packed blocks.
            // (One block per request at queue depth 1 leaves each fragment alone in its block: see docs/reduce.md.)
            for (int i = 0; i < 256; i += 16) {
                byte[] text = new byte[16 * BS];
                for (int j = 0; j < 16; j++) {
                    System.arraycopy(ReduceVolumeTest.compressible(i + j, BS), 0, text, j * BS, BS);
                }
                ok(Sync.write(v, (256L + i) * BS, text));
            }
            ok(Sync.flush(v));
        }
        long written = allocated(image) - before;
        assertTrue(written < (1L << 20) + (1L << 19), "3 MiB written, " + written + " bytes allocated");
        assertEquals(0, run("stats", image.toString()), err());
        assertTrue(out().contains("dedup_shared_references: 255"), out());
        assertTrue(out().contains("compressed_fragments: 256"), out());
        assertEquals(0, run("check", image.toString()), out());

        try (FileBackingStore store = FileBackingStore.open(image, false);
             ReduceVolume v = ReduceVolume.open(store, image.toString(), ReduceVolume.Options.both())) {
            assertArrayEquals(same, Sync.read(v, 100L * BS, BS));
            assertArrayEquals(ReduceVolumeTest.compressible(7, BS), Sync.read(v, 263L * BS, BS));
            ok(Sync.discard(v, 512L * BS, 256L * BS));
            ok(Sync.flush(v));
        }
        long afterDiscard = allocated(image) - before;
        assertTrue(afterDiscard < written - (1L << 20) + (1L << 18),
                "discarding 1 MiB of noise punched it out: " + written + " -> " + afterDiscard);
        assertEquals(0, run("check", image.toString()), out());
    }

    @Test
    void checkReportsDamageWithExitOne() throws Exception {
        Path image = dir.resolve("vol.img");
        assertEquals(0, run("format", image.toString(), "--logical-size", "1M", "--physical-size", "2M"), err());
        long packedAt;
        try (FileBackingStore store = FileBackingStore.open(image, false);
             ReduceVolume v = ReduceVolume.open(store, image.toString(), ReduceVolume.Options.both())) {
            ok(Sync.write(v, 0, ReduceVolumeTest.compressible(1, 2 * BS)));
            ok(Sync.flush(v));
            VolumeState s = VolumeState.load(store, "t");
            packedAt = s.sb.offsetOf(s.sb.dataStart() + Mapping.dataBlock(s.map[0]));
        }
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.seek(packedAt);
            f.write(new byte[16]); // wipe the packed block's magic and first fragment entries
        }
        assertEquals(1, run("check", image.toString()));
        assertTrue(out().contains("problem: packed data block") && out().contains("INCONSISTENT"), out());
    }

    @Test
    void badArgumentsAndNonVolumesAreRefusedPrecisely() throws Exception {
        assertEquals(2, run());
        assertEquals(2, run("format", dir.resolve("x").toString()));
        assertTrue(err().contains("--logical-size is required"), err());
        assertEquals(2, run("format", dir.resolve("x").toString(), "--logical-size", "ten"));
        assertTrue(err().contains("--logical-size: 'ten'"), err());
        assertEquals(2, run("frobnicate", dir.resolve("x").toString()));
        assertEquals(1, run("format", dir.resolve("huge.img").toString(), "--logical-size", "16T", "--physical-size", "1G"));
        assertTrue(err().contains("at most") && err().contains("TiB"), err());
        Path junk = dir.resolve("junk.img");
        Files.write(junk, new byte[1 << 16]);
        assertEquals(1, run("check", junk.toString()));
        assertTrue(out().contains("not a reduce volume"), out());
        assertEquals(1, run("stats", dir.resolve("missing.img").toString()));
        assertTrue(err().contains("missing.img"), err());
    }

    @Test
    void fileStoreRefusesHeapBuffers() throws Exception {
        Path image = dir.resolve("vol.img");
        assertEquals(0, run("format", image.toString(), "--logical-size", "1M"), err());
        try (FileBackingStore store = FileBackingStore.open(image, true)) {
            MemorySegment nativeBuffer = Arena.ofAuto().allocate(BS);
            int[] r = {1};
            store.read(0, nativeBuffer, x -> r[0] = x);
            assertEquals(0, r[0]);
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> store.read(0, MemorySegment.ofArray(new byte[BS]), x -> { }));
        }
    }
}
