package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.hooks.HookContext;

/** How the cache reaches its cache device while it serves. */
interface CacheDeviceIo {

    /** The cache device as a store on {@code owner}'s event loop (called there, before the first request). */
    Store open(HookContext owner);

    /** Stops serving: on the owner's loop if it still runs (null: the cache never served). */
    void close(HookContext owner);

    /**
     * The cache device through one of the project's drivers (io_uring when the kernel allows it): a driver queue of
     * its own, attached to the owner queue's event loop so its completions arrive there.
     */
    static CacheDeviceIo through(BlockDriver driver, String deviceId) {
        return new CacheDeviceIo() {
            private DriverQueue queue;

            @Override
            public Store open(HookContext owner) {
                int[] next = {0};
                RequestStore[] store = new RequestStore[1];
                store[0] = new RequestStore(() -> new BlockRequest(next[0]++, deviceId, owner.queueIndex()),
                        (request, done) -> queue.submit(request));
                try {
                    queue = driver.openQueue(owner.queueIndex(), store[0].completions());
                } catch (DriverException e) {
                    throw new IllegalStateException("cannot open a queue on the cache device " + driver.target() + ": "
                            + e.getMessage(), e);
                }
                owner.attach(queue);
                return store[0];
            }

            @Override
            public void close(HookContext owner) {
                DriverQueue q = queue;
                if (q != null && owner != null) {
                    owner.detach(q);
                    q.close();
                }
                driver.close();
            }
        };
    }
}
