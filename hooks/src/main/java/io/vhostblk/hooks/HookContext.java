package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;

/**
 * What the compat-lib offers a hook on one queue: completing requests it took over, running
 * code back on the queue's event loop, and issuing its own requests to the layers beneath it.
 */
public interface HookContext {

    /** The device this queue belongs to. */
    DeviceInfo device();

    /** The queue's index. */
    int queueIndex();

    /**
     * Finishes a request this hook {@link HookAction#TAKE_OVER took over}: the hooks above see the
     * result, then the guest. Call it on the queue's event loop (from a hook method or a task given
     * to {@link #execute}).
     */
    void complete(BlockRequest request, long result);

    /** Runs {@code task} on the queue's event loop soon; callable from any thread. */
    void execute(Runnable task);

    /**
     * A new request owned by the hook, for its own I/O to the layers beneath (block maps,
     * metadata, remapped data). Allocate these when the hook is created, not per I/O.
     */
    BlockRequest newRequest();

    /**
     * Sends a request of the hook's own ({@link #newRequest}) to the hooks after this one and then
     * the driver; {@code done} gets the result on the event loop. Call on the event loop.
     */
    void submitBelow(BlockRequest request, DriverCompletion done);
}
