package io.vhostblk.hooks;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;

/**
 * Where a class's code was loaded from and, when that is a jar, the jar's SHA-256 — how the
 * server reports (and a policy pins) the compat-lib it runs with.
 */
public record CodeDigest(Path location, String sha256) {

    /** The code source of {@code type}: a jar with its digest, or a classes directory (no digest). */
    public static CodeDigest of(Class<?> type) throws ModuleException {
        CodeSource source = type.getProtectionDomain().getCodeSource();
        if (source == null || source.getLocation() == null) {
            throw new ModuleException("cannot tell where " + type.getName() + " was loaded from (no code source)");
        }
        Path location;
        try {
            location = Path.of(source.getLocation().toURI());
        } catch (URISyntaxException | IllegalArgumentException e) {
            throw new ModuleException(type.getName() + " was loaded from " + source.getLocation()
                    + ", which is not a local file", e);
        }
        if (Files.isDirectory(location)) {
            return new CodeDigest(location, null);
        }
        try {
            return new CodeDigest(location, Sha256.of(location));
        } catch (IOException e) {
            throw new ModuleException("cannot read " + location + " to compute its SHA-256: " + e.getMessage(), e);
        }
    }

    /** Whether the code came from a jar (and so has a digest). */
    public boolean fromJar() {
        return sha256 != null;
    }

    /** For logs: {@code jar PATH sha256 HEX}, or that the code runs from a classes directory. */
    public String describe() {
        return fromJar() ? "jar " + location + " sha256 " + sha256
                : "classes directory " + location + " (not a jar: no digest to check)";
    }
}
