package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.testsupport.ServerJvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Our server, {@code io.vhostblk.server.VhostBlkMain serve}, in its own JVM on the test's class path. */
final class VhostBlkServer extends ProcessBackend {
    static final String MAIN_CLASS = "io.vhostblk.server.VhostBlkMain";
    /** What serve prints once it listens on its socket. */
    static final String READY_LINE = " with QEMU options:";

    private VhostBlkServer(String name, ExportSpec spec, List<String> command) {
        super(name, spec, command, READY_LINE);
    }

    /** Starts the server for {@code spec} and waits for its socket. */
    static VhostBlkServer start(ExportSpec spec) {
        try {
            Class.forName(MAIN_CLASS, false, VhostBlkServer.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            fail("the vhost-blk server entry point " + MAIN_CLASS + " is not on the test class path: "
                    + "the server module does not provide it yet (build it with ./mvnw -B install -DskipTests)");
        }
        List<String> args = new ArrayList<>(imageArgs(spec));
        args.addAll(List.of("--size", Long.toString(spec.size())));
        if (spec.readOnly()) {
            args.add("--read-only");
        }
        args.addAll(spec.serverArgs());
        // With a policy the modules must come from their jars alone, not from the test's class path.
        String classPath = spec.serverArgs().contains("--policy")
                ? ModuleJars.serverClassPath(CryptModule.serverClassPath(), List.of("dedup", "compress", "cache"))
                : System.getProperty("java.class.path");
        return serve("vhost-blk server", spec, classPath, args);
    }

    /**
     * Starts {@code vhost-blk serve ARGS} on {@code classPath} (for a policy: one without the modules
     * it loads, which must then come from their jars), named {@code name} in messages; ready once it
     * listens on the spec's socket.
     */
    static VhostBlkServer serve(String name, ExportSpec spec, String classPath, List<String> args) {
        List<String> command = new ArrayList<>(List.of(ModuleJars.java(), ServerJvm.OPTIONS,
                "-cp", classPath, MAIN_CLASS, "serve"));
        command.addAll(args);
        return new VhostBlkServer(name, spec, command);
    }

    /** {@code --socket}, {@code --disk} and {@code --queues} from {@code spec}. */
    static List<String> imageArgs(ExportSpec spec) {
        return List.of("--socket", spec.socket().toString(), "--disk", spec.image().toString(),
                "--queues", Integer.toString(spec.queues()));
    }

    /**
     * For vhost-blk: whether its log shows the guest's queues running on the ring layout it was
     * offered (each ring start logs "started, packed" or "started, split"); null when it does, or
     * for another back-end. Guards against a packed test that silently ran split.
     */
    static String ringProblem(Backend backend, QemuGuest.Ring ring, Path log, int queues) {
        if (backend != Backend.VHOST_BLK) {
            return null;
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(log);
        } catch (IOException e) {
            return "cannot read the server log " + log + ": " + e;
        }
        long packed = lines.stream().filter(l -> l.contains(" started, packed,")).count();
        long split = lines.stream().filter(l -> l.contains(" started, split,")).count();
        // The firmware (SeaBIOS) drives the disk on a split ring before Linux starts: only Linux's rings count.
        boolean ok = ring == QemuGuest.Ring.PACKED ? packed >= queues : split >= queues && packed == 0;
        return ok ? null : "the guest was offered " + ring.name().toLowerCase() + " rings, but the server started "
                + packed + " packed and " + split + " split rings (" + queues + " queues)";
    }
}
