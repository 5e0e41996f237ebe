package io.vhostblk.hooks;

/** A module that cannot be loaded, configured or attached; the message names the module, file and field. */
public class ModuleException extends Exception {
    public ModuleException(String message) {
        super(message);
    }

    public ModuleException(String message, Throwable cause) {
        super(message, cause);
    }
}
