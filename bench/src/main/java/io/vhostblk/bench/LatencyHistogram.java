package io.vhostblk.bench;

/**
 * A log-linear latency histogram in nanoseconds, as HdrHistogram lays one out: values below
 * 2^{@value #SUB_BITS} ns are exact, above that each power of two is split into
 * 2^{@value #SUB_BITS} equal buckets (relative error under 1/128). Recording is an array
 * increment: no allocation. Not thread-safe: one per queue thread, merged afterwards.
 */
public final class LatencyHistogram {
    static final int SUB_BITS = 7;
    private static final int SUB = 1 << SUB_BITS;
    /** Largest recordable value: 2^40 ns (about 18 minutes); larger values are clamped to it. */
    static final int MAX_EXPONENT = 40;
    private static final long MAX_VALUE = (1L << MAX_EXPONENT) - 1;
    private static final int BUCKETS = SUB + (MAX_EXPONENT - SUB_BITS) * SUB;

    private final long[] counts = new long[BUCKETS];
    private long count;
    private long sum;
    private long min = Long.MAX_VALUE;
    private long max;

    /** Records one value (negative values count as 0). */
    public void record(long nanos) {
        long v = nanos < 0 ? 0 : Math.min(nanos, MAX_VALUE);
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

    static int index(long v) {
        if (v < SUB) {
            return (int) v;
        }
        int e = 63 - Long.numberOfLeadingZeros(v);
        int shift = e - SUB_BITS;
        return SUB + shift * SUB + (int) ((v >>> shift) & (SUB - 1));
    }

    /** The largest value that falls in bucket i. */
    static long highestInBucket(int i) {
        if (i < SUB) {
            return i;
        }
        int k = i - SUB;
        int shift = k / SUB;
        long low = ((long) SUB + (k % SUB)) << shift;
        return low + (1L << shift) - 1;
    }

    /** Adds every value of other to this one. */
    public void add(LatencyHistogram other) {
        for (int i = 0; i < BUCKETS; i++) {
            counts[i] += other.counts[i];
        }
        count += other.count;
        sum += other.sum;
        min = Math.min(min, other.min);
        max = Math.max(max, other.max);
    }

    /** Forgets every value. */
    public void reset() {
        java.util.Arrays.fill(counts, 0);
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
     * The value at percentile p (0 &lt; p &lt;= 100): the upper edge of the bucket holding the
     * ceil(p% of count)-th smallest value, capped at the maximum; 0 when empty. Monotonic in p.
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
        for (int i = 0; i < BUCKETS; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return Math.min(highestInBucket(i), max);
            }
        }
        return max;
    }
}
