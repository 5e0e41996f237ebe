package io.vhostblk.modules.zerodetect;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;

import java.util.Arrays;

/**
 * The zero-detect hook of one queue: a WRITE whose data is all zeros goes to the layers beneath as
 * a WRITE_ZEROES (a hole or a zero-range there instead of a data transfer). The request is put
 * back as the WRITE it was when the result comes back, so the hooks above see what they sent.
 */
final class ZeroDetectHook implements BlockHook {
    private static final int INITIAL_SLOTS = 1024;

    private final boolean unmap;
    /** Per slot: the iovec count of a converted WRITE, or -1 for requests left alone. */
    private int[] convertedIovCount = filled(INITIAL_SLOTS);
    long writesChecked;
    long zeroWrites;
    long bytesSaved;

    ZeroDetectHook(boolean unmap) {
        this.unmap = unmap;
    }

    @Override
    public HookAction beforeDriver(BlockRequest r) {
        if (r.op() != BlockOp.WRITE || r.length() == 0) {
            return HookAction.PASS;
        }
        writesChecked++;
        if (!ZeroData.allZero(r.iov(), r.iovCount(), r.length())) {
            return HookAction.PASS;
        }
        int slot = r.slot();
        if (slot >= convertedIovCount.length) {
            grow(slot);
        }
        convertedIovCount[slot] = r.iovCount();
        zeroWrites++;
        bytesSaved += r.length();
        r.set(BlockOp.WRITE_ZEROES, r.offset(), r.length(), r.iov(), 0, unmap);
        return HookAction.PASS;
    }

    @Override
    public long afterDriver(BlockRequest r, long result) {
        int slot = r.slot();
        if (slot < convertedIovCount.length && convertedIovCount[slot] >= 0) {
            r.set(BlockOp.WRITE, r.offset(), r.length(), r.iov(), convertedIovCount[slot], false);
            convertedIovCount[slot] = -1;
        }
        return result;
    }

    /** A slot beyond the table (a module's own request): grow once, not per I/O. */
    private void grow(int slot) {
        int old = convertedIovCount.length;
        convertedIovCount = Arrays.copyOf(convertedIovCount, Math.max(slot + 1, old * 2));
        Arrays.fill(convertedIovCount, old, convertedIovCount.length, -1);
    }

    private static int[] filled(int n) {
        int[] a = new int[n];
        Arrays.fill(a, -1);
        return a;
    }
}
