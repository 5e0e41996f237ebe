package io.vhostblk.hooks;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.ToLongFunction;

/**
 * Module scaffold: a {@link ModuleInstance} that makes one hook per queue and keeps them, so that its
 * report can sum their counters. A module extends it, makes its hook in {@link #newQueueHook} and
 * reads its queues with {@link #queues()} or {@link #sum}.
 *
 * <p>Threading: {@link #newQueueHook} runs on the queue's event loop; the hook's counters are plain
 * fields written by that loop only, so a report (control thread) may read them a moment old.
 *
 * @param <H> the module's hook type
 */
public abstract class PerQueueInstance<H extends BlockHook> implements ModuleInstance {
    private final List<H> queues = new CopyOnWriteArrayList<>();

    /** The hook for one queue (see {@link ModuleInstance#openQueue}). */
    protected abstract H newQueueHook(HookContext context);

    @Override
    public final BlockHook openQueue(HookContext context) {
        H hook = newQueueHook(context);
        queues.add(hook);
        return hook;
    }

    /** Every queue's hook made so far. */
    protected final List<H> queues() {
        return queues;
    }

    /** A per-queue counter summed over the queues (a moment old at worst). */
    protected final long sum(ToLongFunction<H> counter) {
        long total = 0;
        for (H h : queues) {
            total += counter.applyAsLong(h);
        }
        return total;
    }
}
