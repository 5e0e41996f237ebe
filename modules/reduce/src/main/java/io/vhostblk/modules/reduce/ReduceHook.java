package io.vhostblk.modules.reduce;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;

/**
 * The reduce module on one queue: takes over every guest request and has the device's one volume serve it. The
 * volume is single-threaded and lives on the loop of the queue that opened first (the owner); the other queues
 * hand their requests to that loop and get the result back on their own ({@link HookContext#execute}).
 */
final class ReduceHook implements BlockHook {

    final HookContext context;
    private final ReduceDevice device;
    final boolean owner;
    /** Requests this queue took over (counted on this queue's loop). */
    long requests;
    /** Requests this queue handed to the owner's loop. */
    long handedOver;
    /** The queue's loop has exited: results for it are dropped (its front-end is gone). */
    volatile boolean stopped;

    ReduceHook(ReduceDevice device, HookContext context, boolean owner) {
        this.device = device;
        this.context = context;
        this.owner = owner;
    }

    @Override
    public HookAction beforeDriver(BlockRequest r) {
        requests++;
        if (owner) {
            device.serve(r, this);
        } else {
            handedOver++;
            // Off the owner's loop: one small task each way (the volume is never touched from here).
            device.owner().context.execute(() -> device.serve(r, this));
        }
        return HookAction.TAKE_OVER;
    }

    /** This queue's loop is gone: if it served the volume, the next queue to open takes that on. */
    @Override
    public void queueStopped() {
        device.queueStopped(this);
    }

    /** Called on the owner's loop when the volume answered {@code r}. */
    void finish(BlockRequest r, long result) {
        if (stopped) {
            return;
        }
        if (owner) {
            context.complete(r, result);
        } else {
            context.execute(() -> context.complete(r, result));
        }
    }
}
