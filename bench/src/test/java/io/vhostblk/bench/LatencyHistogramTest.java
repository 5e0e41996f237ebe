package io.vhostblk.bench;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LatencyHistogramTest {
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
        for (int i = 0; i < 100_000; i++) {
            long v = rnd.nextLong(1, 1L << 39);
            long upper = LatencyHistogram.highestInBucket(LatencyHistogram.index(v));
            assertTrue(upper >= v, v + " -> " + upper);
            assertTrue(upper - v <= v >> LatencyHistogram.SUB_BITS, v + " -> " + upper);
        }
    }

    @Test
    void bucketsAreContiguous() {
        for (int i = 1; i < 4352; i++) {
            assertEquals(i, LatencyHistogram.index(LatencyHistogram.highestInBucket(i - 1) + 1), "first of bucket " + i);
            assertEquals(i, LatencyHistogram.index(LatencyHistogram.highestInBucket(i)), "last of bucket " + i);
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
    void mergingAddsCountsAndExtremes() {
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
}
