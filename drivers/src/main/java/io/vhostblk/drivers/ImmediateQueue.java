package io.vhostblk.drivers;

/** A queue for drivers that finish every request inside {@link #submit}: nothing to batch or reap. */
final class ImmediateQueue implements DriverQueue {
    /** Runs one request to its end; returns bytes done or {@code -errno}. */
    @FunctionalInterface
    interface Executor {
        long execute(BlockRequest request);
    }

    private final Executor executor;
    private final DriverCompletion completion;

    ImmediateQueue(Executor executor, DriverCompletion completion) {
        this.executor = executor;
        this.completion = completion;
    }

    @Override
    public void submit(BlockRequest request) {
        completion.complete(request, executor.execute(request));
    }

    @Override
    public void flushBatch() {
    }

    @Override
    public int reap() {
        return 0;
    }

    @Override
    public int completionFd() {
        return -1;
    }

    @Override
    public int inFlight() {
        return 0;
    }

    @Override
    public void close() {
    }
}
