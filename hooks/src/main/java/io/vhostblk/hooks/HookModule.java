package io.vhostblk.hooks;

/**
 * The service a module jar provides (listed in {@code META-INF/services/io.vhostblk.hooks.HookModule}):
 * its name and version, and a factory for its per-device instances.
 */
public interface HookModule {

    /** The module's name as policies refer to it, for example {@code "zero-detect"}. */
    String name();

    /** The module's version, for logs and the control socket. */
    String version();

    /** Attaches the module to a device with the settings the policy gives it. */
    ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException;
}
