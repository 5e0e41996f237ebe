package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FileDriverTest {
    @TempDir
    Path dir;

    private final Arena arena = Arena.ofAuto();
    private final List<Long> results = new ArrayList<>();

    /** An iovec array over the given buffers. */
    private IoVector iov(MemorySegment... bufs) {
        return TestIo.iov(arena, bufs);
    }

    private long run(DriverQueue q, BlockRequest r) {
        results.clear();
        q.submit(r);
        q.flushBatch();
        assertEquals(1, results.size(), "a synchronous driver completes inside submit");
        return results.get(0);
    }

    @Test
    void createsSparseImageOfTheRequestedSize() throws Exception {
        Path img = dir.resolve("new.img");
        try (FileDriver d = FileDriver.open(img, 64L << 20, false)) {
            assertEquals(64L << 20, d.capacity());
        }
        assertEquals(64L << 20, Files.size(img));
    }

    @Test
    void writesScatteredBuffersAndReadsThemBack() throws Exception {
        Path img = dir.resolve("rw.img");
        try (FileDriver d = FileDriver.open(img, 1 << 20, false);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment a = arena.allocate(512);
            MemorySegment b = arena.allocate(3584);
            byte[] pattern = new byte[4096];
            new Random(7).nextBytes(pattern);
            MemorySegment.copy(pattern, 0, a, ValueLayout.JAVA_BYTE, 0, 512);
            MemorySegment.copy(pattern, 512, b, ValueLayout.JAVA_BYTE, 0, 3584);
            BlockRequest w = new BlockRequest(3, "dev", 0).set(BlockOp.WRITE, 8192, 4096, iov(a, b), false);
            assertEquals(4096, run(q, w));

            MemorySegment back = arena.allocate(4096);
            BlockRequest r = new BlockRequest(4, "dev", 0).set(BlockOp.READ, 8192, 4096, iov(back), false);
            assertEquals(4096, run(q, r));
            assertArrayEquals(pattern, back.toArray(ValueLayout.JAVA_BYTE));
        }
        byte[] onDisk = Files.readAllBytes(img);
        assertEquals(0, onDisk[8191]);
        assertTrue(onDisk[8192] != 0 || onDisk[8193] != 0);
    }

    @Test
    void discardAndWriteZeroesReadBackZeros() throws Exception {
        Path img = dir.resolve("z.img");
        try (FileDriver d = FileDriver.open(img, 1 << 20, false);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(65536);
            buf.fill((byte) 0x5a);
            assertEquals(65536, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.WRITE, 0, 65536, iov(buf), false)));
            assertEquals(0, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.DISCARD, 4096, 8192, IoVector.NONE, false)));
            assertEquals(0, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.WRITE_ZEROES, 32768, 4096, IoVector.NONE, false)));
            assertEquals(0, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.WRITE_ZEROES, 40960, 4096, IoVector.NONE, true)));
            assertEquals(0, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false)));
        }
        byte[] data = Files.readAllBytes(img);
        for (int i = 0; i < 65536; i++) {
            boolean zeroed = (i >= 4096 && i < 12288) || (i >= 32768 && i < 36864) || (i >= 40960 && i < 45056);
            assertEquals(zeroed ? 0 : 0x5a, data[i] & 0xff, "byte " + i);
        }
    }

    @Test
    void readOnlyDriverRefusesWritesWithEROFS() throws Exception {
        Path img = dir.resolve("ro.img");
        Files.write(img, new byte[4096]);
        try (FileDriver d = FileDriver.open(img, -1, true);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(512);
            assertEquals(-Errno.EROFS, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.WRITE, 0, 512, iov(buf), false)));
            assertEquals(-Errno.EROFS, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.DISCARD, 0, 512, IoVector.NONE, false)));
            assertEquals(512, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.READ, 0, 512, iov(buf), false)));
        }
    }

    @Test
    void readPastEndOfShortImageGivesZeros() throws Exception {
        // A sparse image truncated behind our back: the tail reads as zeros, not as an error.
        Path img = dir.resolve("short.img");
        try (FileDriver d = FileDriver.open(img, 8192, false);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(4096);
            buf.fill((byte) 1);
            Files.write(img, new byte[]{9, 9}, java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
            assertEquals(4096, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.READ, 0, 4096, iov(buf), false)));
            assertEquals(9, buf.get(ValueLayout.JAVA_BYTE, 1));
            assertEquals(0, buf.get(ValueLayout.JAVA_BYTE, 2));
            assertEquals(0, buf.get(ValueLayout.JAVA_BYTE, 4095));
        }
    }

    @Test
    void sizeMismatchAndMissingImagesAreClearErrors() throws Exception {
        Path img = dir.resolve("sized.img");
        Files.write(img, new byte[4096]);
        DriverException e = assertThrows(DriverException.class, () -> FileDriver.open(img, 8192, false));
        assertTrue(e.getMessage().contains("4096 bytes") && e.getMessage().contains(img.toString()), e.getMessage());
        DriverException ro = assertThrows(DriverException.class, () -> FileDriver.open(dir.resolve("none.img"), 4096, true));
        assertTrue(ro.getMessage().contains("does not exist"), ro.getMessage());
        Files.write(dir.resolve("odd.img"), new byte[1000]);
        DriverException odd = assertThrows(DriverException.class, () -> FileDriver.open(dir.resolve("odd.img"), -1, false));
        assertTrue(odd.getMessage().contains("multiple of 512"), odd.getMessage());
    }
}
