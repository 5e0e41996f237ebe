package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Two Linux guests at once against one {@code vhost-blk serve --config} process, each with its own
 * disk and its own VM policy (stats for one, zero-detect for the other): both guests' data reads
 * back and lands in their own image, and each device's chain and counters are its own.
 */
class TwoGuestsOneDaemonTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(300);
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

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-two", GUEST_TIMEOUT, () -> List.of(WEB, DB));

    @Test
    void twoGuestsEachWithItsOwnDiskAndPolicyShareOneServer() throws Exception {
        Path runDir = GuestHarness.runDir("two-guests-one-daemon");
        Path webImage = runDir.resolve("web.img");
        Path dbImage = runDir.resolve("db.img");
        DiskImage.create(webImage, WEB);
        DiskImage.create(dbImage, DB);
        Path webPolicy = ModuleJars.writePolicy(runDir, "web", "web", List.of("stats"));
        Path dbPolicy = ModuleJars.writePolicy(runDir, "db", "db", List.of("zero-detect"));
        SocketDir sockets = SocketDir.create("vb2-");
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
        Problems problems = new Problems();
        ExportSpec web = new ExportSpec(webImage, DISK, 1, false, sockets.resolve("web.sock"), runDir.resolve("backend.log"));
        // Ready once the first device listens; modules come from their jars.
        try (VhostBlkServer server = VhostBlkServer.serve("vhost-blk server (host config)", web,
                ModuleJars.serverClassPath(MODULES), List.of("--config", config.toString()))) {
            server.awaitFile(sockets.resolve("db.sock"));
            server.awaitFile(control);
            CompletableFuture<GuestRun> webRun = guest(WEB, sockets.resolve("web.sock"), runDir.resolve("web"));
            CompletableFuture<GuestRun> dbRun = guest(DB, sockets.resolve("db.sock"), runDir.resolve("db"));
            GuestRun w = webRun.get(GUEST_TIMEOUT.toSeconds() + 60, TimeUnit.SECONDS);
            GuestRun d = dbRun.get(GUEST_TIMEOUT.toSeconds() + 60, TimeUnit.SECONDS);
            problems.guest("web guest: ", w, WEB);
            problems.guest("db guest: ", d, DB);
            problems.addIfAny("web image: ", DiskImage.compare(webImage, WEB.expectedImage(), WEB));
            problems.addIfAny("db image: ", DiskImage.compare(dbImage, DB.expectedImage(), DB));
            checkDevice(control, "web-root", "web", "stats", problems);
            checkDevice(control, "db-root", "db", "zero-detect", problems);
            Map<?, ?> zero = Control.request(control, "report db-root zero-detect", problems);
            Map<?, ?> report = zero == null ? Map.of() : (Map<?, ?>) zero.get("report");
            if (!(report.get("zero-writes") instanceof Long n && n >= 64)) {
                problems.add("db-root's zero-detect must have turned the 64 zero writes into WRITE_ZEROES: " + zero);
            }
            problems.stop(server);
            problems.failIfAny("two guests, one daemon", () -> "--- web guest ---\n" + w.serialTail(20) + "\n--- db guest ---\n"
                    + Problems.tails(d, 20, server));
        } finally {
            sockets.close();
        }
    }

    private static CompletableFuture<GuestRun> guest(GuestPlan plan, Path socket, Path dir) throws IOException {
        Files.createDirectories(dir);
        return CompletableFuture.supplyAsync(() -> {
            try {
                return HARNESS.boot(plan, socket, dir, QemuGuest.NO_HOST_STEPS);
            } catch (IOException e) {
                throw new IllegalStateException("guest " + plan.name() + " could not run", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        });
    }

    /** The device has its VM, exactly its own policy's module, and that module saw its guest's I/O. */
    private static void checkDevice(Path control, String device, String vm, String module, Problems problems) {
        Map<?, ?> devices = Control.request(control, "devices", problems);
        if (devices == null) {
            return;
        }
        Map<?, ?> d = ((List<?>) devices.get("devices")).stream().map(o -> (Map<?, ?>) o)
                .filter(m -> device.equals(m.get("id"))).findFirst().orElse(null);
        if (d == null || !vm.equals(d.get("vm")) || !List.of(module).equals(d.get("chain"))) {
            problems.add("device " + device + " must be VM " + vm + " with chain [" + module + "]: " + devices);
        }
        Map<?, ?> counters = Control.request(control, "counters " + device + " " + module, problems);
        if (counters != null && !(((Map<?, ?>) counters.get("counters")).get("seen") instanceof Long seen && seen > 0)) {
            problems.add(device + "'s " + module + " saw none of its guest's requests: " + counters);
        }
        Map<?, ?> modules = Control.request(control, "modules " + device, problems);
        if (modules != null && !List.of(module).equals(modules.get("modules"))) {
            problems.add("ctl modules " + device + " must list only its own policy's module: " + modules);
        }
    }
}
