package io.vhostblk.compat;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/** Driver wrappers for tests: one that records what reaches it, one that completes at reap time. */
final class TestDrivers {
    private TestDrivers() {
    }

    /** Passes everything to {@code inner}; tells {@code seen} about each request submitted to it. */
    static BlockDriver recording(BlockDriver inner, Consumer<BlockRequest> seen) {
        return recording(inner, seen, () -> { });
    }

    private static BlockDriver recording(BlockDriver inner, Consumer<BlockRequest> seen, Runnable flushed) {
        return new Wrapper(inner) {
            @Override
            public DriverQueue openQueue(int q, DriverCompletion c) throws DriverException {
                DriverQueue dq = inner.openQueue(q, c);
                return new DriverQueue() {
                    public void submit(BlockRequest r) {
                        seen.accept(r);
                        dq.submit(r);
                    }

                    public void flushBatch() {
                        flushed.run();
                        dq.flushBatch();
                    }

                    public int reap() {
                        return dq.reap();
                    }

                    public int completionFd() {
                        return dq.completionFd();
                    }

                    public int inFlight() {
                        return dq.inFlight();
                    }

                    public void close() {
                        dq.close();
                    }
                };
            }
        };
    }

    /** Passes everything to {@code inner}, logging {@code submit} and {@code flush} (batch flushes) in order. */
    static BlockDriver batchLogging(BlockDriver inner, List<String> events) {
        return recording(inner, r -> events.add("submit"), () -> events.add("flush"));
    }

    /**
     * An asynchronous driver over a synchronous one: {@link DriverQueue#submit} only queues; each
     * {@link DriverQueue#reap} runs and completes a random share of the queued requests, in random
     * order (the inner driver completes each one as it runs it).
     */
    static BlockDriver deferred(BlockDriver inner, Random random, double share) {
        return new Wrapper(inner) {
            @Override
            public DriverQueue openQueue(int q, DriverCompletion c) throws DriverException {
                DriverQueue dq = inner.openQueue(q, c);
                List<BlockRequest> pending = new ArrayList<>();
                return new DriverQueue() {
                    public void submit(BlockRequest r) {
                        if (pending.contains(r)) {
                            throw new AssertionError("request submitted twice while in flight: " + r);
                        }
                        pending.add(r);
                    }

                    public void flushBatch() {
                    }

                    public int reap() {
                        List<BlockRequest> now = new ArrayList<>();
                        for (BlockRequest r : pending) {
                            if (random.nextDouble() < share) {
                                now.add(r);
                            }
                        }
                        pending.removeAll(now);
                        java.util.Collections.shuffle(now, random);
                        for (BlockRequest r : now) {
                            dq.submit(r); // completes through c, which may submit again (into pending)
                        }
                        return now.size();
                    }

                    public int completionFd() {
                        return -1;
                    }

                    public int inFlight() {
                        return pending.size();
                    }

                    public void close() {
                        dq.close();
                    }
                };
            }
        };
    }

    private abstract static class Wrapper implements BlockDriver {
        final BlockDriver inner;

        Wrapper(BlockDriver inner) {
            this.inner = inner;
        }

        public String kind() {
            return inner.kind();
        }

        public String target() {
            return inner.target();
        }

        public long capacity() {
            return inner.capacity();
        }

        public boolean readOnly() {
            return inner.readOnly();
        }

        public boolean supportsDiscard() {
            return inner.supportsDiscard();
        }

        public boolean supportsWriteZeroes() {
            return inner.supportsWriteZeroes();
        }

        public void sync() throws DriverException {
            inner.sync();
        }

        public void close() {
        }
    }
}
