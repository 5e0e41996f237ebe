package io.vhostblk.modules.stats;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LatencyHistogramTest {

    @Test
    void bucketsAreContiguousAndEachValueLiesInItsBucket() {
        LatencyHistogram h = new LatencyHistogram(16);
        int previous = -1;
        for (long v = 0; v < 100_000; v++) {
            int i = h.index(v);
            assertTrue(i == previous || i == previous + 1, "index jumps at " + v);
            assertTrue(v <= h.upperBound(i), v + " above its bucket's bound");
            if (i > 0) {
                assertTrue(v > h.upperBound(i - 1), v + " belongs to an earlier bucket");
            }
            previous = i;
        }
        h.record(Long.MAX_VALUE);
        h.record(-5);
        assertEquals(LatencyHistogram.MAX_NANOS, h.max(), "huge values are clamped");
        assertEquals(0, h.percentile(0.5), "a negative latency (clock step) counts as 0");
    }

    @Test
    void percentilesAreWithinOneBucketOfTheTruth() {
        LatencyHistogram h = new LatencyHistogram(16);
        Random rnd = new Random(42);
        long[] values = new long[100_000];
        for (int i = 0; i < values.length; i++) {
            values[i] = 1000 + (long) (rnd.nextDouble() * rnd.nextDouble() * 5_000_000);
            h.record(values[i]);
        }
        java.util.Arrays.sort(values);
        for (double q : new double[] {0.5, 0.99, 0.999}) {
            long truth = values[(int) Math.ceil(q * values.length) - 1];
            long reported = h.percentile(q);
            assertTrue(reported >= truth, q + ": " + reported + " below " + truth);
            assertTrue(reported <= truth + truth / 16 + 1, q + ": " + reported + " more than 1/16 above " + truth);
        }
        assertEquals(values[values.length - 1], h.max());
        assertEquals(values[values.length - 1], h.percentile(1.0));
    }

    @Test
    void exactForSmallValuesAndEmptyIsZero() {
        LatencyHistogram h = new LatencyHistogram(16);
        assertEquals(0, h.percentile(0.5));
        for (int i = 1; i <= 10; i++) {
            h.record(i);
        }
        assertEquals(5, h.percentile(0.5));
        assertEquals(10, h.percentile(0.99));
        assertEquals(10, h.count());
    }

    @Test
    void mergingAddsCounts() {
        LatencyHistogram a = new LatencyHistogram(8);
        LatencyHistogram b = new LatencyHistogram(8);
        for (int i = 0; i < 90; i++) {
            a.record(100);
        }
        for (int i = 0; i < 10; i++) {
            b.record(1_000_000);
        }
        a.add(b);
        assertEquals(100, a.count());
        assertTrue(a.percentile(0.5) >= 100 && a.percentile(0.5) <= 100 + 100 / 8, "p50 " + a.percentile(0.5));
        assertTrue(a.percentile(0.95) >= 1_000_000 && a.percentile(0.95) <= 1_000_000 + 1_000_000 / 8);
        assertEquals(1_000_000, a.max());
    }
}
