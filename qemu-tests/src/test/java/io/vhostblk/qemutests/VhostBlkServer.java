package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;

/** Our server, {@code io.vhostblk.server.VhostBlkMain serve}, in its own JVM on the test's class path. */
final class VhostBlkServer extends ProcessBackend {
    static final String MAIN_CLASS = "io.vhostblk.server.VhostBlkMain";
    /** What serve prints once it listens on its socket. */
    static final String READY_LINE = " with QEMU options:";

    private VhostBlkServer(ExportSpec spec, List<String> command) {
        super("vhost-blk server", spec, command, READY_LINE);
    }

    /** Starts the server for {@code spec} and waits for its socket. */
    static VhostBlkServer start(ExportSpec spec) {
        try {
            Class.forName(MAIN_CLASS, false, VhostBlkServer.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            fail("the vhost-blk server entry point " + MAIN_CLASS + " is not on the test class path: "
                    + "the server module does not provide it yet (build it with ./mvnw -B install -DskipTests)");
        }
        String java = ProcessHandle.current().info().command()
                .orElse(System.getProperty("java.home") + "/bin/java");
        List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                // With a policy the modules must come from their jars alone, not from the test's class path.
                "-cp", spec.serverArgs().contains("--policy")
                        ? ModuleJars.serverClassPath(CryptModule.serverClassPath(), List.of("dedup", "compress", "cache"))
                        : System.getProperty("java.class.path"),
                MAIN_CLASS, "serve",
                "--socket", spec.socket().toString(),
                "--disk", spec.image().toString(),
                "--size", Long.toString(spec.size()),
                "--queues", Integer.toString(spec.queues())));
        if (spec.readOnly()) {
            command.add("--read-only");
        }
        command.addAll(spec.serverArgs());
        return new VhostBlkServer(spec, command);
    }
}
