package io.vhostblk.modules.zerodetect;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.AbstractHookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

/**
 * {@code zero-detect}: writes of all-zero data become WRITE_ZEROES beneath (as qemu's
 * {@code detect-zeroes}). Setting {@code unmap} (default true): let the layers beneath deallocate
 * the range (punch a hole) rather than write zeros.
 */
public final class ZeroDetectModule extends AbstractHookModule {
    static final String NAME = "zero-detect";
    static final String VERSION = "0.1.0";

    public ZeroDetectModule() {
        super(NAME, VERSION);
    }

    @Override
    public ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
        settings.allowOnly("unmap");
        return new ZeroDetectInstance(settings.flag("unmap", true));
    }
}
