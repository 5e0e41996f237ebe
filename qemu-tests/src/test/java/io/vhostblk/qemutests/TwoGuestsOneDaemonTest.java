package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.server.ControlClient;
import io.vhostblk.server.Json;
import io.vhostblk.testsupport.ServerJvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Two Linux guests at once against one {@code vhost-blk serve --config} process, each with its own
 * disk and its own VM policy (stats for one, zero-detect for the other): both guests' data reads
 * back and lands in their own image, and each device's chain and counters are its own.
 */
class TwoGuestsOneDaemonTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(300);
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long MIB = 1024 * 1024;
    private static final long DISK = 32 * MIB;
    private static final List<String> MODULES = List.of("stats", "zero-detect");

    static final GuestPlan WEB = GuestPlan.writable("two-web", DISK, 1, 1)
            .write("web-4k", 4096, 0, 4 * MIB, 7)
            .write("web-64k", 64 * 1024, 8 * MIB, 2 * MIB, 5 * MIB + 3)
            .read("web-4k-read", 64 * 1024, 0, 4 * MIB, 7)
            .read("web-64k-read", 4096, 8 * MIB, 2 * MIB, 5 * MIB + 3)
            .fsync("web-fsync");
    static final GuestPlan DB = GuestPlan.writable("two-db", DISK, 1, 1)
            .write("db-4k", 4096, 2 * MIB, 4 * MIB, MIB + 11)
            .writeZeros("db-zeros", 4096, 3 * MIB, 256 * 1024)
            .read("db-read", 4096, 2 * MIB, MIB, MIB + 11)
            .readZeros("db-zeros-read", 4096, 3 * MIB, 256 * 1024)
            .read("db-read-tail", 4096, 3 * MIB + 256 * 1024, 3 * MIB - 256 * 1024, 2 * MIB + 11 + 256 * 1024)
            .fsync("db-fsync");

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    @BeforeAll
    static void prepareGuests() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        initramfs = Initramfs.build(TARGET.resolve("guest-two"), kernel, List.of(WEB, DB));
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    @Test
    void twoGuestsEachWithItsOwnDiskAndPolicyShareOneServer() throws Exception {
        Path runDir = TARGET.resolve("qemu-runs").resolve("two-guests-one-daemon");
        deleteRecursively(runDir);
        Files.createDirectories(runDir);
        Path webImage = runDir.resolve("web.img");
        Path dbImage = runDir.resolve("db.img");
        DiskImage.create(webImage, WEB);
        DiskImage.create(dbImage, DB);
        Path webPolicy = ModuleJars.writePolicy(runDir, "web", "web", List.of("stats"));
        Path dbPolicy = ModuleJars.writePolicy(runDir, "db", "db", List.of("zero-detect"));
        Path sockets = Files.createTempDirectory(Path.of("/tmp"), "vb2-");
        Path control = sockets.resolve("ctl.sock");
        Path config = Files.writeString(runDir.resolve("host.conf"), """
                control = %s
                [device web-root]
                socket = %s
                disk = %s
                policy = %s
                [device db-root]
                socket = %s
                disk = %s
                policy = %s
                """.formatted(control, sockets.resolve("web.sock"), webImage, webPolicy,
                sockets.resolve("db.sock"), dbImage, dbPolicy));
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        ExportSpec web = new ExportSpec(webImage, DISK, 1, false, sockets.resolve("web.sock"), runDir.resolve("backend.log"));
        try (ConfigServer server = new ConfigServer(web, config)) {
            awaitFile(sockets.resolve("db.sock"), server);
            awaitFile(control, server);
            CompletableFuture<GuestRun> webRun = guest(WEB, sockets.resolve("web.sock"), runDir.resolve("web"));
            CompletableFuture<GuestRun> dbRun = guest(DB, sockets.resolve("db.sock"), runDir.resolve("db"));
            GuestRun w = webRun.get(GUEST_TIMEOUT.toSeconds() + 60, TimeUnit.SECONDS);
            GuestRun d = dbRun.get(GUEST_TIMEOUT.toSeconds() + 60, TimeUnit.SECONDS);
            w.problems(WEB.checks()).forEach(p -> problems.add("web guest: " + p));
            d.problems(DB.checks()).forEach(p -> problems.add("db guest: " + p));
            String webImageProblem = DiskImage.compare(webImage, WEB.expectedImage(), WEB);
            if (webImageProblem != null) {
                problems.add("web image: " + webImageProblem);
            }
            String dbImageProblem = DiskImage.compare(dbImage, DB.expectedImage(), DB);
            if (dbImageProblem != null) {
                problems.add("db image: " + dbImageProblem);
            }
            checkDevice(control, "web-root", "web", "stats", problems);
            checkDevice(control, "db-root", "db", "zero-detect", problems);
            Map<?, ?> zero = ctl(control, "report db-root zero-detect", problems);
            Map<?, ?> report = zero == null ? Map.of() : (Map<?, ?>) zero.get("report");
            if (!(report.get("zero-writes") instanceof Long n && n >= 64)) {
                problems.add("db-root's zero-detect must have turned the 64 zero writes into WRITE_ZEROES: " + zero);
            }
            StorageBackend.Exit exit = server.stop();
            if (!exit.clean()) {
                problems.add("vhost-blk must exit 0 after SIGTERM, but it " + exit);
            }
            if (!problems.isEmpty()) {
                fail(problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems) + "\n--- web guest ---\n"
                        + w.serialTail(20) + "\n--- db guest ---\n" + d.serialTail(20) + "\n--- vhost-blk log ---\n"
                        + server.logTail(40));
            }
        } finally {
            deleteRecursively(sockets);
        }
    }

    private static CompletableFuture<GuestRun> guest(GuestPlan plan, Path socket, Path dir) throws IOException {
        Files.createDirectories(dir);
        return CompletableFuture.supplyAsync(() -> {
            try {
                return QemuGuest.run(new QemuGuest.Config(kernel, initramfs, plan, socket, dir, GUEST_TIMEOUT),
                        check -> "unexpected SYNCED " + check);
            } catch (IOException e) {
                throw new IllegalStateException("guest " + plan.name() + " could not run", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        });
    }

    /** The device has its VM, exactly its own policy's module, and that module saw its guest's I/O. */
    private static void checkDevice(Path control, String device, String vm, String module, List<String> problems) throws Exception {
        Map<?, ?> devices = ctl(control, "devices", problems);
        if (devices == null) {
            return;
        }
        Map<?, ?> d = ((List<?>) devices.get("devices")).stream().map(o -> (Map<?, ?>) o)
                .filter(m -> device.equals(m.get("id"))).findFirst().orElse(null);
        if (d == null || !vm.equals(d.get("vm")) || !List.of(module).equals(d.get("chain"))) {
            problems.add("device " + device + " must be VM " + vm + " with chain [" + module + "]: " + devices);
        }
        Map<?, ?> counters = ctl(control, "counters " + device + " " + module, problems);
        if (counters != null && !(((Map<?, ?>) counters.get("counters")).get("seen") instanceof Long seen && seen > 0)) {
            problems.add(device + "'s " + module + " saw none of its guest's requests: " + counters);
        }
        Map<?, ?> modules = ctl(control, "modules " + device, problems);
        if (modules != null && !List.of(module).equals(modules.get("modules"))) {
            problems.add("ctl modules " + device + " must list only its own policy's module: " + modules);
        }
    }

    private static Map<?, ?> ctl(Path control, String command, List<String> problems) throws Exception {
        try (ControlClient c = ControlClient.connect(control)) {
            String reply = c.request(command);
            Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
            if (!Boolean.TRUE.equals(m.get("ok"))) {
                problems.add("'" + command + "' refused: " + reply);
                return null;
            }
            return m;
        }
    }

    /** vhost-blk serve --config, ready once the first device's socket exists; modules come from their jars. */
    private static final class ConfigServer extends ProcessBackend {
        ConfigServer(ExportSpec first, Path config) {
            super("vhost-blk server (host config)", first, List.of(ModuleJars.java(), ServerJvm.OPTIONS,
                    "-cp", ModuleJars.serverClassPath(MODULES), VhostBlkServer.MAIN_CLASS, "serve", "--config", config.toString()));
        }
    }

    private static void awaitFile(Path file, ConfigServer server) throws InterruptedException {
        long deadline = System.nanoTime() + ProcessBackend.READY_TIMEOUT.toNanos();
        while (!Files.exists(file)) {
            if (System.nanoTime() > deadline) {
                fail(file + " did not appear\n" + server.logTail(40));
            }
            Thread.sleep(50);
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
