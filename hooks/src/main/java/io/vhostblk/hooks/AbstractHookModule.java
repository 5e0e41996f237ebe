package io.vhostblk.hooks;

/** A module with a fixed name and version (what every module jar's service is): subclasses write only {@link #create}. */
public abstract class AbstractHookModule implements HookModule {
    private final String name;
    private final String version;

    protected AbstractHookModule(String name, String version) {
        this.name = name;
        this.version = version;
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final String version() {
        return version;
    }

    /** How this module's log lines name a device: {@code vm=V device=D module=M}, greppable like the server's own. */
    protected final String label(DeviceInfo device) {
        return device.label() + " module=" + name;
    }
}
