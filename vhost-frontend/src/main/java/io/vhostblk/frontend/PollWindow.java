package io.vhostblk.frontend;

/**
 * A queue loop's adaptive poll window: how long to spin for work before sleeping, grown and
 * shrunk from how long each wait turned out to be, as QEMU's AioContext does with poll-max-ns
 * (grow ×2 from a 4 µs start while work arrives within the limit, shrink when it does not).
 * Pure arithmetic on the durations it is given: the caller owns the clock. Single-threaded.
 */
final class PollWindow {
    /** The first window after polling found nothing worth it (QEMU's initial step). */
    static final long START_NANOS = 4_000;

    private final long maxNanos;
    private final long startNanos;
    private long nanos;

    /** @param maxNanos the largest window; 0 turns polling off */
    PollWindow(long maxNanos) {
        if (maxNanos < 0) {
            throw new IllegalArgumentException("poll window limit " + maxNanos + " ns is negative");
        }
        this.maxNanos = maxNanos;
        this.startNanos = Math.min(START_NANOS, maxNanos);
    }

    /** The current window in nanoseconds (0: sleep at once). */
    long nanos() {
        return nanos;
    }

    long maxNanos() {
        return maxNanos;
    }

    /**
     * Adjusts the window after one wait that lasted {@code waitedNanos} from its start until work
     * arrived, whether polling found it or a sleep ended.
     */
    void observe(long waitedNanos) {
        if (waitedNanos <= nanos) {
            return; // polling found the work: the window is right
        }
        if (waitedNanos > maxNanos) {
            // Work took longer than we would ever spin (an idle queue): spin less, down to not at all.
            long half = nanos / 2;
            nanos = half < startNanos ? 0 : half;
        } else if (nanos < maxNanos) {
            // Work came after the window but within the limit: a longer spin would have caught it.
            nanos = nanos == 0 ? startNanos : Math.min(nanos * 2, maxNanos);
        }
    }
}
