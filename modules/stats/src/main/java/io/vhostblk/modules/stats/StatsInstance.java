package io.vhostblk.modules.stats;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.PerQueueInstance;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;

/** The stats module on one device: a hook per queue, merged into one report. */
final class StatsInstance extends PerQueueInstance<StatsHook> {
    private final LongSupplier clock;
    private final int bucketsPerDoubling;

    StatsInstance(LongSupplier clock, int bucketsPerDoubling) {
        this.clock = clock;
        this.bucketsPerDoubling = bucketsPerDoubling;
    }

    @Override
    protected StatsHook newQueueHook(HookContext context) {
        return new StatsHook(clock, bucketsPerDoubling);
    }

    /**
     * Per operation ({@code read}, {@code write}, {@code flush}, {@code discard},
     * {@code write-zeroes}): count, bytes, errors, p50/p99/p99.9/max latency in nanoseconds, merged
     * across queues; plus the number of queues. Counts may be a moment old.
     */
    @Override
    public Map<String, Object> report() {
        BlockOp[] ops = BlockOp.values();
        OpStats[] merged = new OpStats[ops.length];
        for (int i = 0; i < ops.length; i++) {
            merged[i] = new OpStats(bucketsPerDoubling);
            for (StatsHook q : queues()) {
                merged[i].add(q.ops[i]);
            }
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < ops.length; i++) {
            m.put(ops[i].name().toLowerCase(Locale.ROOT).replace('_', '-'), merged[i].report());
        }
        m.put("queues", queues().size());
        m.put("buckets-per-doubling", bucketsPerDoubling);
        return m;
    }
}
