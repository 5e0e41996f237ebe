package io.vhostblk.frontend;

/**
 * A queue loop's adaptive poll window: how long to spin for work before sleeping, grown and
 * shrunk from how long each wait turned out to be, as QEMU's AioContext does with poll-max-ns
 * (grow ×2 from a 4 µs start while work arrives within the limit, shrink when it does not).
 * Two limits: one while the driver holds no request (work can only come from the guest), a
 * longer one while it does (a disk answers within a few hundred µs, and spinning for that
 * answer saves the wake-up that a sleep would put on the request's path). Pure arithmetic on
 * the durations it is given: the caller owns the clock. Single-threaded.
 */
final class PollWindow {
    /** The first window after polling found nothing worth it (QEMU's initial step). */
    static final long START_NANOS = 4_000;

    private final long maxNanos;
    private final long busyMaxNanos;
    private final long startNanos;
    private long nanos;

    /** @param maxNanos the largest window, also while the driver holds requests; 0 turns polling off */
    PollWindow(long maxNanos) {
        this(maxNanos, maxNanos);
    }

    /**
     * @param maxNanos     the largest window while the driver holds no request; 0 turns polling off
     *                     altogether
     * @param busyMaxNanos the largest window while it holds some (at least maxNanos)
     */
    PollWindow(long maxNanos, long busyMaxNanos) {
        if (maxNanos < 0 || busyMaxNanos < 0) {
            throw new IllegalArgumentException("poll window limits " + maxNanos + " and " + busyMaxNanos
                    + " ns: neither may be negative");
        }
        this.maxNanos = maxNanos;
        this.busyMaxNanos = maxNanos == 0 ? 0 : Math.max(maxNanos, busyMaxNanos);
        this.startNanos = Math.min(START_NANOS, maxNanos);
    }

    /** The current window in nanoseconds (0: sleep at once), before either limit is applied. */
    long nanos() {
        return nanos;
    }

    /** How long to spin now: the window within the limit for whether the driver holds requests. */
    long nanos(boolean driverBusy) {
        return Math.min(nanos, limit(driverBusy));
    }

    long maxNanos() {
        return maxNanos;
    }

    long busyMaxNanos() {
        return busyMaxNanos;
    }

    private long limit(boolean driverBusy) {
        return driverBusy ? busyMaxNanos : maxNanos;
    }

    /** {@link #observe(long, boolean)} for a wait while the driver held no request. */
    void observe(long waitedNanos) {
        observe(waitedNanos, false);
    }

    /**
     * Adjusts the window after one wait that lasted {@code waitedNanos} from its start until work
     * arrived, whether polling found it or a sleep ended; {@code driverBusy}: whether the driver
     * held requests when the wait began (which limit applied).
     */
    void observe(long waitedNanos, boolean driverBusy) {
        long limit = limit(driverBusy);
        long spun = Math.min(nanos, limit);
        if (waitedNanos <= spun) {
            return; // polling found the work: the window is right
        }
        if (waitedNanos > limit) {
            // Work took longer than we would ever spin (an idle queue): spin less, down to not at all.
            long half = spun / 2;
            nanos = half < startNanos ? 0 : half;
        } else if (nanos < limit) {
            // Work came after the window but within the limit: a longer spin would have caught it.
            nanos = nanos == 0 ? startNanos : Math.min(nanos * 2, limit);
        }
    }
}
