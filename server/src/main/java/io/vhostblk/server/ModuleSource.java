package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.ModuleException;

import java.util.List;

/** Where the control socket gets modules from: the names it may enable, and a fresh instance for a device. */
public interface ModuleSource {

    /** No policy loaded: nothing can be enabled. */
    ModuleSource NONE = new ModuleSource() {
        @Override
        public List<String> available() {
            return List.of();
        }

        @Override
        public ChainEntry attach(String name, BlockDevice device) throws ModuleException {
            throw new ModuleException("module " + name + ": no module policy is loaded (start serve with --policy)");
        }
    };

    /** Names of the modules that may be enabled, in policy order. */
    List<String> available();

    /** A new instance of module {@code name} for {@code device}, not yet in its chain. */
    ChainEntry attach(String name, BlockDevice device) throws ModuleException;

    /** Where {@code name} goes in {@code chain} when no position is given; this default puts it last. */
    default int defaultPosition(String name, HookChain chain) {
        return chain.size();
    }

    /** The modules of a {@link ModuleCatalog} (the policy's). */
    static ModuleSource of(ModuleCatalog catalog) {
        return new ModuleSource() {
            @Override
            public List<String> available() {
                return catalog.available();
            }

            @Override
            public ChainEntry attach(String name, BlockDevice device) throws ModuleException {
                return catalog.attach(name, device);
            }

            @Override
            public int defaultPosition(String name, HookChain chain) {
                return catalog.position(name, chain);
            }
        };
    }
}
