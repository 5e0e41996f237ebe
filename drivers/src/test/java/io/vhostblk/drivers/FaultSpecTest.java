package io.vhostblk.drivers;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FaultSpecTest {

    @Test
    void parsesEveryTerm() {
        FaultSpec s = FaultSpec.parse("latency=500us,eio=1M-2M,eio=0-512,eio-nth=7,enospc-after=64K,short=3,power-cut=10,reorder=42");
        assertEquals(500_000, s.latencyNanos());
        assertEquals(2, s.eioRanges().size());
        assertArrayEquals(new long[] {1 << 20, 2 << 20}, s.eioRanges().get(0));
        assertEquals(7, s.eioNth());
        assertEquals(64 << 10, s.enospcAfter());
        assertEquals(3, s.shortEvery());
        assertTrue(s.powerCut());
        assertEquals(10, s.powerCutAfter());
        assertEquals(42, s.reorderSeed());
        FaultSpec cutAtClose = FaultSpec.parse("power-cut");
        assertTrue(cutAtClose.powerCut());
        assertEquals(0, cutAtClose.powerCutAfter());
        assertEquals(-1, cutAtClose.reorderSeed());
        assertEquals(2_000_000_000L, FaultSpec.parse("latency=2s").latencyNanos());
    }

    @Test
    void rangesAreHalfOpen() {
        FaultSpec s = FaultSpec.parse("eio=4096-8192");
        assertFalse(s.inEioRange(0, 4096));
        assertTrue(s.inEioRange(0, 4097));
        assertTrue(s.inEioRange(8191, 1));
        assertFalse(s.inEioRange(8192, 4096));
        assertTrue(s.inEioRange(4096, 0), "a zero-length request at the start of the range touches it");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "latency=5xs|unit must be ns, us, ms or s",
            "latency=90s|at most 60 s",
            "eio=10|expected START-END",
            "eio=8-4|END must be after START",
            "eio-nth=0|must be at least 1",
            "short=x|'x' is not a number",
            "enospc-after=|needs a value",
            "reorder=1|needs power-cut",
            "bogus=1|unknown fault",
            "' '|empty fault spec"})
    void refusesWithTheTermAndTheReason(String spec, String reason) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FaultSpec.parse(spec));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
    }
}
