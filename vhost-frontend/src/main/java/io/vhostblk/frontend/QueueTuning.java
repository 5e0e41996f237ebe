package io.vhostblk.frontend;

/**
 * How a queue's event loop waits for work.
 *
 * @param pollMicros         the adaptive poll window's limit: spin up to this long for new requests
 *                           or completions before sleeping, guest kicks suppressed (0: never spin,
 *                           whatever the other limit; see {@link PollWindow})
 * @param pollInflightMicros the window's limit while the driver holds requests (at least
 *                           pollMicros): a disk's answer comes within a few hundred µs, and a spin
 *                           that catches it saves a wake-up on the request's path. Used only while
 *                           the process has a CPU per serving queue loop ({@link ServingLoops})
 * @param kickOnRing         with a driver that has its own io_uring, watch the kick eventfd on that
 *                           ring so one io_uring_enter submits and sleeps (else poll() on kick,
 *                           driver and mailbox fds). Off by default: on this project's test machine
 *                           it measured 10-35% fewer IOPS at queue depth 32 (docs/benchmarks.md)
 */
public record QueueTuning(int pollMicros, int pollInflightMicros, boolean kickOnRing) {
    /**
     * Adaptive polling up to 50 µs, 200 µs while the driver holds requests (what pinned
     * comparisons measured, docs/benchmarks.md); poll() on the fds.
     */
    public static final QueueTuning DEFAULTS = new QueueTuning(50, 200, false);
}
