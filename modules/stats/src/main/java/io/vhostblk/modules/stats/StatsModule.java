package io.vhostblk.modules.stats;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.AbstractHookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

/**
 * {@code stats}: latency histograms (p50/p99/p99.9), request counts and bytes per operation for
 * each device, as the guest sees them when the module sits first in the chain. Setting
 * {@code buckets}: histogram buckets per doubling of latency, a power of two up to 256 (default 16,
 * that is at most 6.25 % error).
 */
public final class StatsModule extends AbstractHookModule {
    static final String NAME = "stats";
    static final String VERSION = "0.1.0";

    public StatsModule() {
        super(NAME, VERSION);
    }

    @Override
    public ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
        settings.allowOnly("buckets");
        long buckets = settings.number("buckets", 16, 1, 256);
        if (Long.bitCount(buckets) != 1) {
            throw settings.error("buckets", buckets + " is not a power of two");
        }
        return new StatsInstance(System::nanoTime, (int) buckets);
    }
}
