package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockRequest;

/**
 * A module's view of a device's I/O: called at the compat-lib's pre-call point (①, before the
 * driver) and at its completion point (②, after the driver, before the guest is told). Runs on
 * the queue's event loop: it must not block it.
 */
public interface BlockHook {

    /** Point ①: pass the request on, or complete it here (after {@link BlockRequest#result(long)}). */
    HookAction beforeDriver(BlockRequest request);

    /**
     * Point ②: sees the result of the layers below (bytes or {@code -errno}) and returns the
     * result to hand upwards, possibly changed.
     */
    long afterDriver(BlockRequest request, long result);
}
