package io.vhostblk.bench;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.Deflater;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WriteDataTest {
    private static final int BS = 4096;

    private static byte[] block(WriteData d, int queue, long n) {
        MemorySegment b = Arena.ofAuto().allocate(BS);
        d.fill(b, BS, 1, queue, n);
        return b.toArray(ValueLayout.JAVA_BYTE);
    }

    private static int deflated(byte[] b) {
        Deflater z = new Deflater(1);
        z.setInput(b);
        z.finish();
        byte[] out = new byte[2 * BS];
        int n = z.deflate(out);
        z.end();
        return n;
    }

    @Test
    void randomNeverRepeatsAndDoesNotCompress() {
        Set<String> seen = new HashSet<>();
        for (int q = 0; q < 2; q++) {
            for (long n = 0; n < 100; n++) {
                assertTrue(seen.add(java.util.Arrays.toString(block(WriteData.RANDOM, q, n))), "write " + n + " of queue " + q);
            }
        }
        assertTrue(deflated(block(WriteData.RANDOM, 0, 5)) > BS * 95 / 100);
    }

    @Test
    void compressibleIsHalfRandomHalfZeros() {
        byte[] b = block(WriteData.COMPRESSIBLE, 0, 3);
        assertArrayEquals(new byte[BS / 2], java.util.Arrays.copyOfRange(b, BS / 2, BS));
        assertFalse(java.util.Arrays.equals(b, block(WriteData.COMPRESSIBLE, 0, 4)));
        int size = deflated(b);
        assertTrue(size > BS * 45 / 100 && size < BS * 55 / 100, "about 2:1, deflated to " + size);
    }

    @Test
    void duplicateCyclesThroughSixteenBlocksOnEveryQueue() {
        Set<String> distinct = new HashSet<>();
        for (long n = 0; n < 64; n++) {
            distinct.add(java.util.Arrays.toString(block(WriteData.DUPLICATE, (int) n % 2, n)));
        }
        assertEquals(WriteData.DISTINCT, distinct.size());
        assertArrayEquals(block(WriteData.DUPLICATE, 0, 1), block(WriteData.DUPLICATE, 1, 17));
    }

    @Test
    void theOptionParses() throws Exception {
        assertEquals(WriteData.COMPRESSIBLE, BenchOptions.parse(List.of("--socket", "/tmp/x.sock", "--data", "compressible")).data());
        assertEquals(WriteData.ZEROS, BenchOptions.parse(List.of("--socket", "/tmp/x.sock")).data());
        BenchUsageException e = assertThrows(BenchUsageException.class,
                () -> BenchOptions.parse(List.of("--socket", "/tmp/x.sock", "--data", "lumpy")));
        assertTrue(e.getMessage().contains("--data") && e.getMessage().contains("'lumpy' is not zeros"), e.getMessage());
    }
}
