package io.vhostblk.modules.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CacheCommandTest {

    @TempDir
    Path dir;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        out.reset();
        err.reset();
        return new CacheCommand().run(List.of(args), new PrintStream(out, true), new PrintStream(err, true));
    }

    @Test
    void formatStatusAndFlush() throws Exception {
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[1 << 20]);
        Path cache = dir.resolve("cache.bin");
        assertEquals(0, run("format", cache.toString(), "--volume", image.toString(), "--size", "8M"), err.toString());
        assertTrue(out.toString().contains("for volume " + image), out.toString());
        assertEquals(0, run("status", cache.toString()), err.toString());
        assertTrue(out.toString().contains("dirty blocks: 0"), out.toString());

        CacheHeader h = CacheFile.read(cache).header();
        try (RandomAccessFile raf = new RandomAccessFile(cache.toFile(), "rw")) {
            raf.seek(h.metadataOffset());
            raf.write(new SlotEntry().encode(9, 1));
            raf.seek(h.slotOffset(0));
            byte[] data = new byte[4096];
            java.util.Arrays.fill(data, (byte) 7);
            raf.write(data);
        }
        assertEquals(0, run("status", cache.toString()));
        assertTrue(out.toString().contains("dirty blocks: 1"), out.toString());
        assertEquals(1, run("flush", cache.toString(), dir.resolve("other.img").toString()));
        assertEquals(0, run("flush", cache.toString(), image.toString()), err.toString());
        assertTrue(out.toString().contains("1 dirty blocks written back"), out.toString());
        assertEquals(7, Files.readAllBytes(image)[9 * 4096]);
        assertEquals(0, run("status", cache.toString()));
        assertTrue(out.toString().contains("dirty blocks: 0"), out.toString());
    }

    @Test
    void badCommandLinesAreUsageErrors() {
        assertEquals(2, run("format", "x"));
        assertTrue(err.toString().contains("--volume"), err.toString());
        assertEquals(2, run("frobnicate"));
        assertEquals(2, run("format", "x", "--volume", "v", "--backing-size", "1M", "--size", "lots"));
        assertTrue(err.toString().contains("lots"), err.toString());
        assertEquals(2, run("format", "x", "--volume", "v", "--backing-size", "1M", "--size", "8M", "--block-size", "3000"));
        assertEquals(1, run("status", dir.resolve("missing").toString()));
    }
}
