package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.hooks.Sha256;
import java.io.File;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** The crypt module as a server loads it: its jar from the module's build, and a policy naming it. */
final class CryptModule {
    private static final Path MODULE_TARGET = Path.of("..", "modules", "crypt", "target").toAbsolutePath().normalize();

    private CryptModule() {
    }

    /** The module jar the reactor built. */
    static Path jar() throws IOException {
        if (Files.isDirectory(MODULE_TARGET)) {
            try (DirectoryStream<Path> s = Files.newDirectoryStream(MODULE_TARGET, "vhost-blk-module-crypt-*.jar")) {
                for (Path p : s) {
                    return p;
                }
            }
        }
        return fail("no crypt module jar in " + MODULE_TARGET + " (build it: ./mvnw -B -pl modules/crypt -am package)");
    }

    /**
     * Writes a policy for VM {@code vm} whose chain is the crypt module alone, unlocking with
     * {@code keyFile}; {@code moreSettings} are further lines of the module's section.
     */
    static Path writePolicy(Path policy, String vm, Path keyFile, String... moreSettings) throws IOException {
        Path jar = jar();
        return Files.writeString(policy, String.join("\n",
                "vm = " + vm,
                "module-dir = " + jar.getParent(),
                "chain = crypt",
                "[module crypt]",
                "jar = " + jar.getFileName(),
                "sha256 = " + Sha256.of(Files.readAllBytes(jar)),
                "set.key-file = " + keyFile,
                String.join("\n", moreSettings),
                ""));
    }

    /** The test's class path without the module, which the server must load from its jar alone. */
    static String serverClassPath() {
        return Stream.of(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(e -> !e.contains("vhost-blk-module-crypt") && !e.contains("modules/crypt") && !e.contains("bcprov"))
                .collect(Collectors.joining(File.pathSeparator));
    }
}
