package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.OwnRequests;

/** How the cache reaches its cache device while it serves. */
interface CacheDeviceIo {

    /** The cache device as a store on {@code owner}'s event loop (called there, before the first request). */
    Store open(HookContext owner);

    /** Stops serving: on the owner's loop if it still runs (null: the cache never served). */
    void close(HookContext owner);

    /** Whether the owner's loop stopped (it closed the queue attached to it): no task given to it will run. */
    default boolean ownerStopped() {
        return false;
    }

    /**
     * The cache device through one of the project's drivers (io_uring when the kernel allows it): a driver queue of
     * its own, attached to the owner queue's event loop so its completions arrive there.
     */
    static CacheDeviceIo through(BlockDriver driver, String deviceId) {
        return new CacheDeviceIo() {
            private volatile DriverQueue queue;
            private volatile boolean stopped;

            @Override
            public Store open(HookContext owner) {
                int[] next = {0};
                RequestStore[] store = new RequestStore[1];
                store[0] = new RequestStore(new OwnRequests(() -> new BlockRequest(next[0]++, deviceId, owner.queueIndex()),
                        (request, done) -> queue.submit(request)));
                DriverQueue opened;
                try {
                    opened = driver.openQueue(owner.queueIndex(), store[0].completions());
                } catch (DriverException e) {
                    throw new IllegalStateException("cannot open a queue on the cache device " + driver.target() + ": "
                            + e.getMessage(), e);
                }
                stopped = false;
                queue = new Closing(opened, () -> stopped = true);
                owner.attach(queue);
                return store[0];
            }

            @Override
            public boolean ownerStopped() {
                return stopped;
            }

            @Override
            public void close(HookContext owner) {
                DriverQueue q = queue;
                if (q != null && owner != null && !stopped) {
                    owner.detach(q);
                    q.close();
                }
                driver.close();
            }
        };
    }

    /** A driver queue that says when it is closed (the loop it is attached to closes it when it stops). */
    final class Closing implements DriverQueue {
        private final DriverQueue queue;
        private final Runnable onClose;

        Closing(DriverQueue queue, Runnable onClose) {
            this.queue = queue;
            this.onClose = onClose;
        }

        @Override
        public void submit(BlockRequest request) {
            queue.submit(request);
        }

        @Override
        public void flushBatch() {
            queue.flushBatch();
        }

        @Override
        public int reap() {
            return queue.reap();
        }

        @Override
        public int completionFd() {
            return queue.completionFd();
        }

        @Override
        public int inFlight() {
            return queue.inFlight();
        }

        @Override
        public void close() {
            onClose.run();
            queue.close();
        }
    }
}
