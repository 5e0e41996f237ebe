package io.vhostblk.compat;

import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookCounters;

/**
 * A device's hook chain as one queue runs it: the per-queue hook of each module, in chain order,
 * with that queue's counters. Built on the event loop when the device's chain changes.
 */
final class QueueHooks {
    final HookChain chain;
    final ChainEntry[] entries;
    final BlockHook[] hooks;
    final HookCounters[] counters;

    QueueHooks(HookChain chain, ChainEntry[] entries, BlockHook[] hooks, HookCounters[] counters) {
        this.chain = chain;
        this.entries = entries;
        this.hooks = hooks;
        this.counters = counters;
    }

    int size() {
        return hooks.length;
    }

    /** Where module {@code entry} sits in this chain, or -1. */
    int indexOf(ChainEntry entry) {
        for (int i = 0; i < entries.length; i++) {
            if (entries[i] == entry) {
                return i;
            }
        }
        return -1;
    }
}
