package io.vhostblk.compat;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookContext;

import java.util.Arrays;

/** What one module's hook on one queue may do (the {@link HookContext} of the SPI), served by the queue's {@link HookRunner}. */
final class QueueHookContext implements HookContext {
    private final HookRunner runner;
    private final ChainEntry entry;
    /** This hook's child request per parent slot, made on first use. */
    private BlockRequest[] children = new BlockRequest[0];

    QueueHookContext(HookRunner runner, ChainEntry entry) {
        this.runner = runner;
        this.entry = entry;
    }

    ChainEntry entry() {
        return entry;
    }

    @Override
    public DeviceInfo device() {
        return runner.device().info();
    }

    @Override
    public int queueIndex() {
        return runner.queueIndex();
    }

    @Override
    public void complete(BlockRequest request, long result) {
        runner.completeTakenOver(this, request, result);
    }

    @Override
    public void execute(Runnable task) {
        runner.post(task);
    }

    @Override
    public BlockRequest child(BlockRequest parent) {
        int slot = parent.slot();
        if (slot >= children.length) {
            children = Arrays.copyOf(children, Math.max(slot + 1, children.length * 2));
        }
        BlockRequest c = children[slot];
        if (c == null || c.parent() != parent) {
            c = runner.newModuleRequest(entry, parent);
            children[slot] = c;
        }
        return c;
    }

    @Override
    public BlockRequest newRequest() {
        return runner.newModuleRequest(entry, null);
    }

    @Override
    public void submitBelow(BlockRequest request, DriverCompletion done) {
        runner.submitBelow(entry, request, done);
    }

    @Override
    public void attach(DriverQueue queue) {
        runner.attach(queue, entry.name());
    }

    @Override
    public void detach(DriverQueue queue) {
        runner.detach(queue);
    }
}
