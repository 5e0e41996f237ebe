package io.vhostblk.frontend;

import java.util.function.LongSupplier;

/**
 * How a queue loop waits for work: spin within the adaptive {@link PollWindow} while guest kicks
 * stay suppressed (work is found by looking, so the guest need not notify), then re-enable kicks,
 * look once more (a request made available before the guest could see kicks on sent none), and
 * only then sleep. Kicks go off again on waking. Single-threaded; counts how waits ended.
 */
final class AdaptiveWait {
    /** What a wait watches; the queue loop implements it once, so waiting allocates nothing. */
    interface Source {
        /** Whether work is there now: new avail entries, or driver completions (reaped by the call), or a stop. */
        boolean workReady();

        /** Turns guest kicks on or off; ordered (full fence) before the caller's next look at the ring. */
        void kicksEnabled(boolean enabled);

        /** Whether the driver holds requests (their completions will come: a longer spin may pay). */
        boolean driverBusy();

        /** Whether the guest has made a request available that the loop has not taken. */
        boolean availPending();

        /** Sleeps until a kick, a driver completion, module work or a stop. */
        void sleep();
    }

    /** How a wait ended. */
    enum Outcome {
        /** Spinning found work. */
        POLLED,
        /** The look after re-enabling kicks found a request (no kick was sent for it). */
        RECHECKED,
        /** The loop slept and was woken. */
        SLEPT
    }

    private final PollWindow window;
    private final LongSupplier clock;
    private long polled;
    private long rechecked;
    private long slept;

    /** @param clock monotonic nanoseconds ({@code System::nanoTime}; tests pass a counter) */
    AdaptiveWait(PollWindow window, LongSupplier clock) {
        this.window = window;
        this.clock = clock;
    }

    /** Waits for work as the class comment says; the window learns from how long it took. */
    Outcome await(Source source) {
        long start = clock.getAsLong();
        boolean busy = source.driverBusy();
        long spin = window.nanos(busy);
        if (spin > 0) {
            do {
                if (source.workReady()) {
                    window.observe(clock.getAsLong() - start, busy);
                    polled++;
                    return Outcome.POLLED;
                }
                Thread.onSpinWait();
            } while (clock.getAsLong() - start < spin);
        }
        source.kicksEnabled(true);
        if (source.availPending()) {
            source.kicksEnabled(false);
            window.observe(clock.getAsLong() - start, busy);
            rechecked++;
            return Outcome.RECHECKED;
        }
        source.sleep();
        source.kicksEnabled(false);
        window.observe(clock.getAsLong() - start, busy);
        slept++;
        return Outcome.SLEPT;
    }

    PollWindow window() {
        return window;
    }

    /** Waits that spinning ended. */
    long polled() {
        return polled;
    }

    /** Waits that the look after re-enabling kicks ended. */
    long rechecked() {
        return rechecked;
    }

    /** Waits that slept. */
    long slept() {
        return slept;
    }
}
