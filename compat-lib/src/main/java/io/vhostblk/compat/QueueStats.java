package io.vhostblk.compat;

/**
 * What one virtqueue has served, for metrics: guest requests, bytes and answers by operation, and
 * their latency (from decoding to the status byte) in power-of-two buckets. Written only by the
 * queue's event loop, with plain stores and nothing allocated; read by a metrics scrape from another
 * thread, which may see a value a request or two behind.
 */
public final class QueueStats {
    /** Operations counted apart: the virtio-blk request types a guest sends. */
    public enum Op {
        READ, WRITE, FLUSH, DISCARD, WRITE_ZEROES, GET_ID, OTHER
    }

    /** Latency buckets: bucket {@code b} holds latencies of bit length {@code b} (so below 2^b ns). */
    public static final int BUCKETS = 64;

    private static final Op[] OPS = Op.values();
    /** Whether requests are timed (two clock reads each): on while metrics are served, off otherwise. */
    private static volatile boolean timing;

    private final int queueIndex;
    private final long[] requests = new long[OPS.length];
    private final long[] bytes = new long[OPS.length];
    private final long[] ioErrors = new long[OPS.length];
    private final long[] unsupported = new long[OPS.length];
    private final long[][] latency = new long[OPS.length][BUCKETS];
    private final long[] latencyNanos = new long[OPS.length];
    /** Plain, like the counters: a volatile store here would put a fence on every request. */
    private int inFlight;

    public QueueStats(int queueIndex) {
        this.queueIndex = queueIndex;
    }

    /** Turns the latency clock on or off for every queue of the process (metrics on or off). */
    public static void timing(boolean on) {
        timing = on;
    }

    /** The time to stamp a request with when it starts: now when timing, else 0 (no clock read). */
    static long startStamp() {
        return timing ? System.nanoTime() : 0;
    }

    public int queueIndex() {
        return queueIndex;
    }

    /** A guest request stamped {@code startStamp} was answered: OK (with {@code dataBytes} moved), IOERR or UNSUPP. */
    void answered(Op op, byte status, long dataBytes, long startStamp, int nowInFlight) {
        int i = op.ordinal();
        requests[i]++;
        switch (status) {
            case io.vhostblk.virtio.VirtioBlk.S_OK -> bytes[i] += dataBytes;
            case io.vhostblk.virtio.VirtioBlk.S_UNSUPP -> unsupported[i]++;
            default -> ioErrors[i]++;
        }
        if (startStamp != 0) {
            long n = Math.max(0, System.nanoTime() - startStamp);
            latency[i][64 - Long.numberOfLeadingZeros(n)]++;
            latencyNanos[i] += n;
        }
        inFlight = nowInFlight;
    }

    void inFlight(int now) {
        inFlight = now;
    }

    public long requests(Op op) {
        return requests[op.ordinal()];
    }

    /** Bytes moved by requests of {@code op} answered OK (READ, WRITE, GET_ID). */
    public long bytes(Op op) {
        return bytes[op.ordinal()];
    }

    public long ioErrors(Op op) {
        return ioErrors[op.ordinal()];
    }

    public long unsupported(Op op) {
        return unsupported[op.ordinal()];
    }

    /** Guest requests started and not yet answered, as of the last one started or answered. */
    public int inFlight() {
        return inFlight;
    }

    /** Requests of {@code op} that were timed (answered while timing was on). */
    public long timed(Op op) {
        long n = 0;
        for (long c : latency[op.ordinal()]) {
            n += c;
        }
        return n;
    }

    /** Requests of {@code op} whose latency had bit length {@code bucket} (below 2^bucket ns). */
    public long latencyBucket(Op op, int bucket) {
        return latency[op.ordinal()][bucket];
    }

    /** The sum of the latencies of {@code op}'s requests, in nanoseconds. */
    public long latencyNanos(Op op) {
        return latencyNanos[op.ordinal()];
    }
}
