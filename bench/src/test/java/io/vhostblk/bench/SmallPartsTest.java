package io.vhostblk.bench;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DataPattern, WrittenBlocks, OffsetSource and the /proc parser. */
class SmallPartsTest {
    @Test
    void patternDependsOnOffsetAndSeedAndDetectsPoison() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096);
            DataPattern p = new DataPattern(1);
            p.fill(buf, 8192, 4096);
            assertEquals(-1, p.firstMismatch(buf, 8192, 4096));
            assertEquals(0, p.firstMismatch(buf, 4096, 4096), "another block's data");
            assertEquals(0, new DataPattern(2).firstMismatch(buf, 8192, 4096), "another seed's data");
            buf.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 1000, (byte) (buf.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 1000) ^ 1));
            assertEquals(1000 & ~7, p.firstMismatch(buf, 8192, 4096));
            DataPattern.poison(buf, 4096);
            assertEquals(0, p.firstMismatch(buf, 8192, 4096));
            assertNotEquals(DataPattern.POISON, p.word(0));
        }
    }

    @Test
    void writtenBlocksIterateMarkedBlocksInOrder() {
        WrittenBlocks w = new WrittenBlocks(200);
        w.mark(3);
        w.mark(64);
        w.mark(199);
        w.mark(3);
        assertEquals(3, w.count());
        assertEquals(3, w.next(0));
        assertEquals(64, w.next(4));
        assertEquals(199, w.next(65));
        assertEquals(-1, w.next(200));
        assertEquals(-1, new WrittenBlocks(10).next(0));
        assertTrue(w.marked(64));
        assertTrue(w.marked(199));
        assertFalse(w.marked(65));
        assertFalse(w.marked(0));
    }

    @Test
    void sequentialStreamsStartSpreadAndWrap() {
        OffsetSource q1 = new OffsetSource(false, 10, 1, 2, 1);
        assertEquals(5, q1.next());
        for (int i = 0; i < 4; i++) {
            q1.next();
        }
        assertEquals(0, q1.next(), "wraps at the end of the span");
        OffsetSource r = new OffsetSource(true, 7, 0, 1, 1);
        for (int i = 0; i < 1000; i++) {
            long b = r.next();
            assertTrue(b >= 0 && b < 7, Long.toString(b));
        }
    }

    @Test
    void procStatParsingSkipsTheCommandName() throws Exception {
        String line = "1234 (java (x) y) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 30 0";
        assertEquals(325, ProcessCpu.ticks(line));
        assertThrows(BenchException.class, () -> ProcessCpu.ticks("garbage"));
        assertThrows(BenchException.class, () -> ProcessCpu.ticks("1 (x) S 1 2"));
    }

    @Test
    void selfCpuTimeIsReadable() throws Exception {
        ProcessCpu self = ProcessCpu.self();
        assertTrue(self.nanos() >= 0);
        assertThrows(BenchException.class, () -> ProcessCpu.of(Integer.MAX_VALUE));
    }
}
