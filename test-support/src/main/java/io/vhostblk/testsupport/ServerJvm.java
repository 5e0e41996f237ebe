package io.vhostblk.testsupport;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How tests start a vhost-blk JVM (a server, ctl, bench): with the JVM options of the launchers, read from
 * {@code packaging/jvm.options} as a java argument file, so a tests' server runs as an installed one does
 * (collector, heap, stack and code cache sizes, native access).
 */
public final class ServerJvm {
    /** The java argument that reads the launchers' options: {@code @/.../packaging/jvm.options}. */
    public static final String OPTIONS = "@" + optionsFile();

    private ServerJvm() {
    }

    /** The java of this test run. */
    public static String java() {
        return ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
    }

    /** {@code packaging/jvm.options} of the checkout the tests run in (a module's directory or the root). */
    public static Path optionsFile() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path options = dir.resolve("packaging").resolve("jvm.options");
            if (Files.isRegularFile(options)) {
                return options;
            }
        }
        throw new IllegalStateException("packaging/jvm.options not found in " + Path.of("").toAbsolutePath()
                + " or a directory above it: tests must run inside the vhost-blk checkout");
    }
}
