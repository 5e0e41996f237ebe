package io.vhostblk.hooks;

import java.util.Arrays;

/**
 * A log-linear latency histogram in nanoseconds (the HdrHistogram layout), for modules and the load
 * generator alike: values below the buckets-per-doubling are exact, and each further doubling is
 * split into that many equal buckets, so the relative error is at most 1/buckets-per-doubling at
 * every scale. Recording is an index computation and one increment: no allocation, no lock.
 * Written by one thread (a queue's event loop); others may read counts a moment old, or merge
 * copies with {@link #add}.
 */
public final class LatencyHistogram {
    /** Latencies are clamped here (2^40 ns, about 18 minutes); anything longer is a hang, not a latency. */
    public static final long MAX_NANOS = (1L << 40) - 1;
    /** Buckets per doubling of {@link #LatencyHistogram()}: under 1 % error. */
    public static final int DEFAULT_BUCKETS_PER_DOUBLING = 128;

    private final int subBits;
    private final long[] counts;
    private long count;
    private long sum;
    private long min = Long.MAX_VALUE;
    private long max;

    /** A histogram with {@link #DEFAULT_BUCKETS_PER_DOUBLING} buckets per doubling. */
    public LatencyHistogram() {
        this(DEFAULT_BUCKETS_PER_DOUBLING);
    }

    /** @param bucketsPerDoubling a power of two, 1..256 */
    public LatencyHistogram(int bucketsPerDoubling) {
        if (Integer.bitCount(bucketsPerDoubling) != 1 || bucketsPerDoubling > 256) {
            throw new IllegalArgumentException("buckets per doubling must be a power of two up to 256: " + bucketsPerDoubling);
        }
        this.subBits = Integer.numberOfTrailingZeros(bucketsPerDoubling);
        this.counts = new long[index(MAX_NANOS) + 1];
    }

    /** Records one latency; negative values (a clock step) count as 0, huge ones as {@link #MAX_NANOS}. */
    public void record(long nanos) {
        long v = nanos < 0 ? 0 : Math.min(nanos, MAX_NANOS);
        counts[index(v)]++;
        count++;
        sum += v;
        if (v < min) {
            min = v;
        }
        if (v > max) {
            max = v;
        }
    }

    /** Adds every value of {@code other} (same buckets per doubling) to this one. */
    public void add(LatencyHistogram other) {
        if (other.subBits != subBits) {
            throw new IllegalArgumentException("cannot merge histograms of " + (1 << other.subBits) + " and "
                    + (1 << subBits) + " buckets per doubling");
        }
        for (int i = 0; i < counts.length; i++) {
            counts[i] += other.counts[i];
        }
        count += other.count;
        sum += other.sum;
        min = Math.min(min, other.min);
        max = Math.max(max, other.max);
    }

    /** Forgets every value. */
    public void reset() {
        Arrays.fill(counts, 0);
        count = 0;
        sum = 0;
        min = Long.MAX_VALUE;
        max = 0;
    }

    public long count() {
        return count;
    }

    /** The smallest recorded value, or 0 when empty. */
    public long min() {
        return count == 0 ? 0 : min;
    }

    public long max() {
        return max;
    }

    /** The mean, or 0 when empty. */
    public double mean() {
        return count == 0 ? 0 : (double) sum / count;
    }

    /**
     * The value at percentile {@code p} (0 &lt; p &le; 100): the upper edge of the bucket holding the
     * ceil(p % of count)-th smallest value, capped at the maximum (never below the truth, at most one
     * bucket above it); 0 when empty. Monotonic in p.
     */
    public long percentile(double p) {
        if (!(p > 0 && p <= 100)) {
            throw new IllegalArgumentException("percentile " + p + " is not in (0, 100]");
        }
        if (count == 0) {
            return 0;
        }
        long rank = Math.max(1, (long) Math.ceil(p / 100.0 * count));
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return Math.min(upperBound(i), max);
            }
        }
        return max;
    }

    /** The bucket of value {@code v} (0 ≤ v ≤ {@link #MAX_NANOS}). */
    int index(long v) {
        int sub = 1 << subBits;
        if (v < sub) {
            return (int) v;
        }
        int shift = 63 - Long.numberOfLeadingZeros(v) - subBits;
        return ((shift + 1) << subBits) + (int) ((v >>> shift) - sub);
    }

    /** The largest value that falls in bucket {@code index}. */
    long upperBound(int index) {
        int sub = 1 << subBits;
        if (index < sub) {
            return index;
        }
        int shift = (index >> subBits) - 1;
        long mantissa = sub + (index & (sub - 1));
        return ((mantissa + 1) << shift) - 1;
    }
}
