package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockRequest;

/**
 * A module's hook on one queue of one device: called at the compat-lib's pre-call point (①,
 * before the layers beneath) and at its completion point (②, after them, before the guest is
 * told).
 *
 * <p>Both run on the queue's event loop thread, which serves every request of that queue: they
 * must not block (no disk or network I/O, no locks that another thread can hold for long). Heavy
 * work goes to another thread with {@link HookAction#TAKE_OVER}, and comes back with
 * {@link HookContext#execute} and {@link HookContext#complete}. An exception thrown here fails the
 * request with an I/O error and disables the module on the device.
 */
public interface BlockHook {

    /** Point ①: pass the request on, answer it, or take it over. */
    HookAction beforeDriver(BlockRequest request);

    /**
     * Point ②: the result of the layers beneath (bytes, or {@code -errno}); returns the result to
     * hand upwards, possibly changed. Only called for requests this hook passed on.
     */
    default long afterDriver(BlockRequest request, long result) {
        return result;
    }

    /**
     * The queue stopped (its front-end stopped the ring, disconnected or reset the device): its event
     * loop has exited, nothing more runs there, and requests still in flight on it never complete.
     * Called once, on the thread that stopped the queue. A hook whose queue did work for other
     * queues hands that on (the next queue to open a hook can take it).
     */
    default void queueStopped() {
    }
}
