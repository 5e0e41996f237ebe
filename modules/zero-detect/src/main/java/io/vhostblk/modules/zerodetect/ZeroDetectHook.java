package io.vhostblk.modules.zerodetect;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;

/**
 * The zero-detect hook of one queue: a WRITE whose data is all zeros goes to the layers beneath as
 * a WRITE_ZEROES child request (a hole or a zero-range there instead of a data transfer); the
 * guest's WRITE is completed with the child's result, so the hooks above see what they sent.
 */
final class ZeroDetectHook implements BlockHook, DriverCompletion {
    private final HookContext context;
    private final boolean unmap;
    long writesChecked;
    long zeroWrites;
    long bytesSaved;

    ZeroDetectHook(HookContext context, boolean unmap) {
        this.context = context;
        this.unmap = unmap;
    }

    @Override
    public HookAction beforeDriver(BlockRequest r) {
        if (r.op() != BlockOp.WRITE || r.length() == 0) {
            return HookAction.PASS;
        }
        writesChecked++;
        // Data shorter than the request: not a write we understand; leave it to the driver.
        if (r.data().length() < r.length() || !r.data().isAllZero(0, r.length())) {
            return HookAction.PASS;
        }
        zeroWrites++;
        bytesSaved += r.length();
        BlockRequest child = context.child(r).set(BlockOp.WRITE_ZEROES, r.offset(), r.length(), IoVector.NONE, unmap);
        context.submitBelow(child, this);
        return HookAction.TAKE_OVER;
    }

    /** The WRITE_ZEROES came back: the guest's WRITE gets its result. */
    @Override
    public void complete(BlockRequest child, long result) {
        context.complete(child.parent(), result);
    }
}
