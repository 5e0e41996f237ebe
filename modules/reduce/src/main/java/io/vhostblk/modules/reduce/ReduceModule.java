package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.AbstractHookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

/** One of the two names of the reduce engine; both attach through {@link ReduceModules}. */
abstract class ReduceModule extends AbstractHookModule {

    ReduceModule(String name) {
        super(name, ReduceModules.VERSION);
    }

    @Override
    public final ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
        return ReduceModules.create(name(), device, settings);
    }
}
