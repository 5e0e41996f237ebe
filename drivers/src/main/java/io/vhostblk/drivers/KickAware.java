package io.vhostblk.drivers;

/**
 * A {@link DriverQueue} whose completion ring can also watch the virtqueue's kick eventfd, so a
 * queue loop waits in one place ({@link #awaitCompletions}) for both guest kicks and disk
 * completions. Optional: a loop that polls {@link DriverQueue#completionFd} and the kick fd
 * itself never calls these.
 */
public interface KickAware {
    /** Told from {@link DriverQueue#reap} that the kick fd became readable; the loop drains it. */
    @FunctionalInterface
    interface KickListener {
        void kicked();
    }

    /**
     * Starts watching {@code kickFd} (a multishot poll on the ring, re-armed when the kernel ends
     * it); takes effect with the next {@link DriverQueue#flushBatch} or {@link #awaitCompletions}.
     * The ring only reports readiness: the loop still reads the eventfd, which works whether or
     * not the fd is non-blocking.
     */
    void armKick(int kickFd, KickListener listener);

    /** Stops watching the kick fd (the poll is removed with the next submission). */
    void disarmKick();

    /**
     * Hands queued requests to the kernel and blocks until at least one completion (I/O or kick)
     * is ready to {@link DriverQueue#reap}; returns 0, or {@code -errno} (EINTR on a signal).
     */
    int awaitCompletions();
}
