package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockRequest;

import java.util.Arrays;
import java.util.List;

/**
 * A device's ordered hooks, immutable; a device swaps its whole chain at once, so in-flight
 * requests finish on the chain they started on. Completion runs the hooks that saw the request
 * in reverse order, as a stack of layers unwinds.
 */
public final class HookChain {
    private final BlockHook[] hooks;

    public HookChain(List<BlockHook> hooks) {
        this.hooks = hooks.toArray(BlockHook[]::new);
    }

    public int size() {
        return hooks.length;
    }

    public List<BlockHook> hooks() {
        return Arrays.asList(hooks.clone());
    }

    /**
     * Runs point ① through the chain.
     *
     * @return how many hooks passed the request on: {@link #size()} when the driver is to be called,
     *         less when hook number {@code n} completed it
     */
    public int beforeDriver(BlockRequest request) {
        for (int i = 0; i < hooks.length; i++) {
            if (hooks[i].beforeDriver(request) == HookAction.COMPLETE) {
                return i;
            }
        }
        return hooks.length;
    }

    /** Runs point ② through the first {@code depth} hooks, innermost first. */
    public long afterDriver(BlockRequest request, long result, int depth) {
        long r = result;
        for (int i = depth - 1; i >= 0; i--) {
            r = hooks[i].afterDriver(request, r);
        }
        return r;
    }
}
