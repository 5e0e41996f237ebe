package io.vhostblk.modules.stats;

/**
 * A log-linear latency histogram (the HdrHistogram layout): each doubling of latency is split into
 * a fixed number of equal buckets, so the relative error is at most 1/buckets-per-doubling at
 * every scale. Recording is an index computation and one increment: no allocation, no lock.
 * Written by one thread; others may read a count a moment old.
 */
final class LatencyHistogram {
    /** Latencies are clamped here (about 18 minutes); anything longer is a hang, not a latency. */
    static final long MAX_NANOS = (1L << 40) - 1;

    private final int subBits;
    private final long[] counts;
    private long total;
    private long max;

    /** @param bucketsPerDoubling a power of two, 1..256 */
    LatencyHistogram(int bucketsPerDoubling) {
        if (Integer.bitCount(bucketsPerDoubling) != 1 || bucketsPerDoubling > 256) {
            throw new IllegalArgumentException("buckets per doubling must be a power of two up to 256: " + bucketsPerDoubling);
        }
        this.subBits = Integer.numberOfTrailingZeros(bucketsPerDoubling);
        this.counts = new long[index(MAX_NANOS) + 1];
    }

    void record(long nanos) {
        long v = nanos < 0 ? 0 : Math.min(nanos, MAX_NANOS);
        counts[index(v)]++;
        total++;
        if (v > max) {
            max = v;
        }
    }

    /** Adds {@code other}'s counts (same layout) to this one. */
    void add(LatencyHistogram other) {
        for (int i = 0; i < counts.length; i++) {
            counts[i] += other.counts[i];
        }
        total += other.total;
        max = Math.max(max, other.max);
    }

    long count() {
        return total;
    }

    long max() {
        return max;
    }

    /**
     * The latency at or below which a fraction {@code q} of the samples lie, as the upper bound of
     * its bucket (never below the truth, at most one bucket above it); 0 when empty.
     */
    long percentile(double q) {
        if (total == 0) {
            return 0;
        }
        long rank = Math.max(1, (long) Math.ceil(q * total));
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return Math.min(upperBound(i), max);
            }
        }
        return max;
    }

    int index(long v) {
        int sub = 1 << subBits;
        if (v < sub) {
            return (int) v;
        }
        int shift = 63 - Long.numberOfLeadingZeros(v) - subBits;
        return ((shift + 1) << subBits) + (int) ((v >>> shift) - sub);
    }

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
