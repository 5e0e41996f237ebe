package io.vhostblk.hooks;

import java.nio.file.Path;

/**
 * A module jar that passed its digest check and was loaded: its service, the jar it came from and
 * that jar's SHA-256.
 */
public record LoadedModule(HookModule module, Path jar, String sha256) {

    public String name() {
        return module.name();
    }

    public String version() {
        return module.version();
    }

    /** The module's class loader (one per jar, so modules cannot see each other's classes). */
    public ClassLoader classLoader() {
        return module.getClass().getClassLoader();
    }
}
