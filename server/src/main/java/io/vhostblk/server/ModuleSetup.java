package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.ModuleException;

import java.nio.file.Path;

/**
 * What {@code serve} does about modules: reads the policy, checks the compat-lib against its pin,
 * loads the module jars (digests first) before anything is opened, and gives the device its
 * initial chain. Any refusal stops the start-up.
 */
final class ModuleSetup {
    private final Policy policy;
    private final ModuleCatalog catalog;
    private final String vmName;

    private ModuleSetup(Policy policy, ModuleCatalog catalog, String vmName) {
        this.policy = policy;
        this.catalog = catalog;
        this.vmName = vmName;
    }

    static ModuleSetup start(ServeOptions options) throws StartupException {
        Policy policy;
        try {
            policy = options.policy() == null ? Policy.none() : Policy.load(options.policy());
        } catch (PolicyException e) {
            throw new StartupException(e.getMessage(), e);
        }
        CompatLibCheck.verify(policy);
        String vm = vmName(options, policy);
        ModuleCatalog catalog;
        try {
            catalog = ModuleCatalog.load(policy, moduleDir(options, policy));
        } catch (ModuleException e) {
            throw new StartupException(e.getMessage(), e);
        }
        return new ModuleSetup(policy, catalog, vm);
    }

    /** --vm, else the policy's vm; both given must agree, since the policy was written for one VM. */
    static String vmName(ServeOptions options, Policy policy) throws StartupException {
        if (policy.vm() == null) {
            return options.vmName();
        }
        if (!options.vmName().equals(ServeOptions.UNKNOWN_VM) && !options.vmName().equals(policy.vm())) {
            throw new StartupException(policy.file() + ": vm: the policy is for VM " + policy.vm() + ", but --vm says "
                    + options.vmName(), null);
        }
        return policy.vm();
    }

    /** --module-dir, else the policy's module-dir, else the policy file's directory. */
    static Path moduleDir(ServeOptions options, Policy policy) {
        if (options.moduleDir() != null) {
            return options.moduleDir();
        }
        if (policy.moduleDir() != null) {
            return policy.moduleDir();
        }
        return policy.file() == null ? Path.of(".") : policy.file().toAbsolutePath().getParent();
    }

    String vmName() {
        return vmName;
    }

    ModuleCatalog catalog() {
        return catalog;
    }

    Policy policy() {
        return policy;
    }

    /** Gives {@code device} the policy's initial chain (before a guest sees its geometry). */
    void attach(BlockDevice device) throws StartupException {
        HookChain chain;
        try {
            chain = catalog.initialChain(device);
        } catch (ModuleException e) {
            throw new StartupException(e.getMessage(), e);
        }
        try {
            device.hooks(chain);
        } catch (IllegalStateException e) {
            throw new StartupException(device.label() + ": " + e.getMessage(), e);
        }
    }

    /** The device's queues stopped: closes its modules' instances, then the module class loaders. */
    void stopped(BlockDevice device) {
        ModuleCatalog.closeChain(device);
        catalog.close();
    }

    /** Start-up failed after loading: releases the class loaders. */
    void abandon() {
        catalog.close();
    }
}
