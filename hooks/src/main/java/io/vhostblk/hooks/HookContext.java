package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverQueue;

/**
 * What the compat-lib offers a hook on one queue: completing requests it took over, running code
 * back on the queue's event loop, and sending requests of its own to the layers beneath it.
 *
 * <p>There is one way to send anything below other than the request as given: a request the hook
 * owns, submitted with {@link #submitBelow}. A <em>child</em> ({@link #child}) serves one request
 * the hook took over (crypt's read moved past the LUKS header, zero-detect's WRITE_ZEROES); a
 * request from {@link #newRequest} is the hook's own I/O (metadata, a block map). Both are
 * allocated once and reused, so nothing is allocated per I/O.
 */
public interface HookContext {

    /** The device this queue belongs to. */
    DeviceInfo device();

    /** The queue's index. */
    int queueIndex();

    /**
     * Finishes a request this hook {@link HookAction#TAKE_OVER took over}: the hooks above see the
     * result, then the guest. Call it on the queue's event loop (from a hook method, a completion of
     * {@link #submitBelow}, or a task given to {@link #execute}).
     */
    void complete(BlockRequest request, long result);

    /** Runs {@code task} on the queue's event loop soon; callable from any thread. */
    void execute(Runnable task);

    /**
     * This hook's child request for {@code parent} (one per parent slot, made the first time and
     * then reused; {@link BlockRequest#parent()} is {@code parent}). Fill it with
     * {@link BlockRequest#set}, send it with {@link #submitBelow}, and complete the parent from the
     * completion. Call on the event loop.
     */
    BlockRequest child(BlockRequest parent);

    /**
     * A new request owned by the hook, for its own I/O to the layers beneath (block maps,
     * metadata). Allocate these when the hook is created, not per I/O.
     */
    BlockRequest newRequest();

    /**
     * Sends a request the hook owns ({@link #child} or {@link #newRequest}) to the hooks after this
     * one and then the driver; {@code done} gets the result on the event loop. Call on the event loop.
     */
    void submitBelow(BlockRequest request, DriverCompletion done);

    /**
     * Serves a driver queue the module opened itself (a cache device through the io_uring driver) on
     * this queue's event loop: the loop hands the queue's batch to the kernel and reaps its
     * completions together with its own, and wakes up for them, so their {@code DriverCompletion}s
     * run on the loop. The loop owns the queue from now on: it closes it when the queue stops,
     * unless {@link #detach} gave it back first. Call on the event loop.
     */
    default void attach(DriverQueue queue) {
        throw new UnsupportedOperationException("this hook context serves no driver queues of its own");
    }

    /** Stops serving a queue given to {@link #attach}; the module closes it. Call on the event loop. */
    default void detach(DriverQueue queue) {
        throw new UnsupportedOperationException("this hook context serves no driver queues of its own");
    }
}
