package io.vhostblk.drivers;

/**
 * A driver's per-queue context, owned by one queue event loop. Requests are queued with
 * {@link #submit}, handed to the device once per batch with {@link #flushBatch}, and their
 * results delivered through the queue's {@link DriverCompletion} from {@link #submit} (drivers
 * that complete synchronously) or from {@link #reap} (asynchronous drivers).
 */
public interface DriverQueue extends AutoCloseable {

    /** Queues a request; a synchronous driver completes it before returning. */
    void submit(BlockRequest request);

    /** Hands every queued request to the device (one system call per batch where possible). */
    void flushBatch();

    /** Delivers finished requests to the completion handler without blocking; returns how many. */
    int reap();

    /**
     * An fd that becomes readable when {@link #reap} has work, so the event loop can wait on it
     * together with the kick fd; -1 when every request completes inside {@link #submit}.
     */
    int completionFd();

    /** Requests submitted and not yet completed. */
    int inFlight();

    @Override
    void close();
}
