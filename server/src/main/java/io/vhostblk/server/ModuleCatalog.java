package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookModule;
import io.vhostblk.hooks.LoadedModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleLoader;

import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The modules a policy declares, loaded (digests checked) and ready to attach to devices: each
 * with its settings and selector, in the policy's chain order.
 */
public final class ModuleCatalog implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ModuleCatalog.class.getName());

    /** A declared module and its loaded service. */
    record Module(ModuleDeclaration declaration, HookModule service) {
    }

    private final Map<String, Module> modules;
    private final ModuleLoader loader;

    ModuleCatalog(List<Module> modules, ModuleLoader loader) {
        Map<String, Module> m = new LinkedHashMap<>();
        for (Module mod : modules) {
            m.put(mod.declaration().name(), mod);
        }
        this.modules = m;
        this.loader = loader;
    }

    /** No modules (no policy). */
    public static ModuleCatalog empty() {
        return new ModuleCatalog(List.of(), null);
    }

    /**
     * Loads every module the policy declares from {@code moduleDir}, each jar checked against its
     * pinned SHA-256 first; any refusal fails the whole catalog (nothing half-loaded stays).
     */
    public static ModuleCatalog load(Policy policy, Path moduleDir) throws ModuleException {
        if (policy.modules().isEmpty()) {
            return empty();
        }
        ModuleLoader loader = new ModuleLoader(moduleDir);
        List<Module> loaded = new ArrayList<>();
        try {
            for (ModuleDeclaration d : policy.modules()) {
                LoadedModule lm = loader.load(d.name(), d.jar(), d.sha256(), d.origin());
                loaded.add(new Module(d, lm.module()));
            }
        } catch (ModuleException | RuntimeException e) {
            loader.close();
            throw e;
        }
        return new ModuleCatalog(loaded, loader);
    }

    /** Names of the modules that may be enabled, in policy order. */
    public List<String> available() {
        return List.copyOf(modules.keySet());
    }

    /** The module's declaration (jar, digest, selector, settings, enabled at start). */
    public ModuleDeclaration declaration(String name) throws ModuleException {
        return module(name).declaration();
    }

    /**
     * A new instance of module {@code name} for {@code device}, with the policy's settings; not yet
     * in the device's chain.
     *
     * @throws ModuleException when the policy has no such module, its selector excludes the
     *                         device, or the module refuses (bad setting...)
     */
    public ChainEntry attach(String name, BlockDevice device) throws ModuleException {
        Module m = module(name);
        DeviceInfo info = device.info();
        String mismatch = m.declaration().selector().mismatch(info);
        if (mismatch != null) {
            throw new ModuleException(m.declaration().origin() + ": module " + name + " does not apply to "
                    + device.label() + ": " + mismatch);
        }
        ModuleInstance instance;
        try {
            instance = m.service().create(info, m.declaration().settings());
        } catch (RuntimeException e) {
            throw new ModuleException(m.declaration().origin() + ": module " + name + " failed to attach to "
                    + device.label() + ": " + e, e);
        }
        if (instance == null) {
            throw new ModuleException(m.declaration().origin() + ": module " + name + " returned no instance for " + device.label());
        }
        return new ChainEntry(name, m.service().version(), instance);
    }

    /**
     * The chain a device starts with: the enabled modules whose selector matches it, in policy
     * order. Modules left out are logged with the reason. If one fails to attach, the instances
     * already made are closed and the error is thrown.
     */
    public HookChain initialChain(BlockDevice device) throws ModuleException {
        List<ChainEntry> entries = new ArrayList<>();
        try {
            for (Module m : modules.values()) {
                ModuleDeclaration d = m.declaration();
                String mismatch = d.selector().mismatch(device.info());
                if (mismatch != null) {
                    LOG.log(Level.INFO, device.label() + " module=" + d.name() + ": not attached: " + mismatch
                            + " (" + d.origin() + ")");
                } else if (!d.enabled()) {
                    LOG.log(Level.INFO, device.label() + " module=" + d.name()
                            + ": available, not enabled at start (enabled = false at " + d.origin() + ")");
                } else {
                    entries.add(attach(d.name(), device));
                }
            }
        } catch (ModuleException | RuntimeException e) {
            closeAll(device, entries);
            throw e;
        }
        HookChain chain = new HookChain(entries);
        LOG.log(Level.INFO, device.label() + ": module chain " + (chain.size() == 0 ? "empty" : String.join(" -> ", chain.names()) + " -> driver"));
        return chain;
    }

    /**
     * Where the policy's order puts module {@code name} in {@code chain}: after the modules the
     * policy lists before it, so enabling a module at run time keeps the policy's order.
     */
    public int position(String name, HookChain chain) {
        List<String> order = available();
        int mine = order.indexOf(name);
        int at = 0;
        for (String present : chain.names()) {
            int rank = order.indexOf(present);
            if (rank >= 0 && rank < mine) {
                at = chain.names().indexOf(present) + 1;
            }
        }
        return at;
    }

    /** Closes the instances in the device's current chain; call after its queues stopped. */
    public static void closeChain(BlockDevice device) {
        closeAll(device, device.chain().entries());
    }

    private static void closeAll(BlockDevice device, List<ChainEntry> entries) {
        for (ChainEntry e : entries) {
            try {
                e.instance().close();
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, device.label() + " module=" + e.name() + ": closing the instance failed", ex);
            }
        }
    }

    private Module module(String name) throws ModuleException {
        Module m = modules.get(name);
        if (m == null) {
            throw new ModuleException("no module '" + name + "' in the policy (available: "
                    + (modules.isEmpty() ? "none" : String.join(", ", modules.keySet())) + ")");
        }
        return m;
    }

    /** Closes the modules' class loaders; call once no instance is in use any more. */
    @Override
    public void close() {
        if (loader != null) {
            loader.close();
        }
    }
}
