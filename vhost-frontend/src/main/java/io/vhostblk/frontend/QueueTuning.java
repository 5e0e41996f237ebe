package io.vhostblk.frontend;

/**
 * How a queue's event loop waits for work.
 *
 * @param pollMicros the adaptive poll window's limit: spin up to this long for new requests or
 *                   completions before sleeping, guest kicks suppressed (0: never spin; see
 *                   {@link PollWindow})
 * @param kickOnRing with a driver that has its own io_uring, watch the kick eventfd on that ring
 *                   so one io_uring_enter submits and sleeps (else poll() on kick, driver and
 *                   mailbox fds). Off by default: on this project's test machine it measured
 *                   10-35% fewer IOPS at queue depth 32 (docs/benchmarks.md)
 */
public record QueueTuning(int pollMicros, boolean kickOnRing) {
    /** Adaptive polling up to 50 µs (what a pinned comparison measured, docs/benchmarks.md), poll() on the fds. */
    public static final QueueTuning DEFAULTS = new QueueTuning(50, false);
}
