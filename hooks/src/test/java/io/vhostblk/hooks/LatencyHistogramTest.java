package io.vhostblk.hooks;

import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The module kit's latency histogram: bucket layout, percentiles, merging (used by stats and the load generator). */
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
        assertEquals(0, h.percentile(50), "a negative latency (clock step) counts as 0");
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
        for (double q : new double[] {50, 99, 99.9}) {
            long truth = values[(int) Math.ceil(q / 100 * values.length) - 1];
            long reported = h.percentile(q);
            assertTrue(reported >= truth, q + ": " + reported + " below " + truth);
            assertTrue(reported <= truth + truth / 16 + 1, q + ": " + reported + " more than 1/16 above " + truth);
        }
        assertEquals(values[values.length - 1], h.max());
        assertEquals(values[values.length - 1], h.percentile(100));
    }

    @Test
    void exactForSmallValuesAndEmptyIsZero() {
        LatencyHistogram h = new LatencyHistogram(16);
        assertEquals(0, h.percentile(50));
        for (int i = 1; i <= 10; i++) {
            h.record(i);
        }
        assertEquals(5, h.percentile(50));
        assertEquals(10, h.percentile(99));
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
        assertTrue(a.percentile(50) >= 100 && a.percentile(50) <= 100 + 100 / 8, "p50 " + a.percentile(50));
        assertTrue(a.percentile(95) >= 1_000_000 && a.percentile(95) <= 1_000_000 + 1_000_000 / 8);
        assertEquals(1_000_000, a.max());
    }

    @Test
    void smallValuesAreExactAndPercentilesFollowRanks() {
        LatencyHistogram h = new LatencyHistogram();
        for (int v = 1; v <= 100; v++) {
            h.record(v);
        }
        assertEquals(100, h.count());
        assertEquals(50, h.percentile(50));
        assertEquals(99, h.percentile(99));
        assertEquals(100, h.percentile(100));
        assertEquals(1, h.percentile(0.5));
        assertEquals(1, h.min());
        assertEquals(100, h.max());
        assertEquals(50.5, h.mean(), 1e-9);
    }

    @Test
    void largeValuesAreWithinOneBucketAboveAndNeverBelow() {
        SplittableRandom rnd = new SplittableRandom(7);
        LatencyHistogram h = new LatencyHistogram();
        for (int i = 0; i < 100_000; i++) {
            long v = rnd.nextLong(1, 1L << 39);
            long upper = h.upperBound(h.index(v));
            assertTrue(upper >= v, v + " -> " + upper);
            assertTrue(upper - v <= v >> 7, v + " -> " + upper);
        }
    }

    @Test
    void bucketsAreContiguous() {
        LatencyHistogram h = new LatencyHistogram();
        for (int i = 1; i < 4352; i++) {
            assertEquals(i, h.index(h.upperBound(i - 1) + 1), "first of bucket " + i);
            assertEquals(i, h.index(h.upperBound(i)), "last of bucket " + i);
        }
    }

    @Test
    void percentilesAreOrderedAndCappedByMax() {
        LatencyHistogram h = new LatencyHistogram();
        SplittableRandom rnd = new SplittableRandom(3);
        for (int i = 0; i < 50_000; i++) {
            h.record((long) (20_000 * Math.exp(rnd.nextGaussian())));
        }
        long p50 = h.percentile(50);
        long p99 = h.percentile(99);
        long p999 = h.percentile(99.9);
        assertTrue(h.min() <= p50 && p50 <= p99 && p99 <= p999 && p999 <= h.max(), p50 + " " + p99 + " " + p999);
        assertEquals(h.max(), h.percentile(100));
    }

    @Test
    void mergingAddsCountsAndExtremesAndResetForgets() {
        LatencyHistogram a = new LatencyHistogram();
        LatencyHistogram b = new LatencyHistogram();
        a.record(10);
        b.record(1_000_000);
        b.record(-5);
        a.add(b);
        assertEquals(3, a.count());
        assertEquals(0, a.min());
        assertEquals(1_000_000, a.max());
        a.reset();
        assertEquals(0, a.count());
        assertEquals(0, a.percentile(99));
    }

    @Test
    void rejectsPercentilesOutsideTheRange() {
        LatencyHistogram h = new LatencyHistogram();
        assertThrows(IllegalArgumentException.class, () -> h.percentile(0));
        assertThrows(IllegalArgumentException.class, () -> h.percentile(100.1));
    }

    @Test
    void mergingHistogramsOfDifferentLayoutsIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new LatencyHistogram(8).add(new LatencyHistogram(16)));
    }
}
