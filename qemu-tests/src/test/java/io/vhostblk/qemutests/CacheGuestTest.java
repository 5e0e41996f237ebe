package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.modules.cache.CacheCommand;
import io.vhostblk.server.ControlClient;
import io.vhostblk.server.Json;
import io.vhostblk.testsupport.ServerJvm;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Guests through the {@code cache} module (the jar loaded through a policy) on a cache file smaller than the disk:
 * in each mode a guest writes, rereads, discards, zeroes and reads everything back on two queues, and afterwards
 * the image (for write-back: after {@code vhost-blk cache flush}) holds exactly what it wrote. A write-back cache
 * whose server is killed with SIGKILL after the guest's fsync keeps the writes: a new server on the same cache
 * serves them to a second guest, and they reach the image.
 */
class CacheGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(300);
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long DISK = 32 * MIB;
    private static final String DEVICE = "disk.img";
    private static final List<String> CHAIN = List.of("cache");
    private static final String[] MODES = {"write-through", "write-around", "write-back"};

    static final List<GuestPlan> PLANS = plans();
    static final GuestPlan KILL_WRITE = killWrite();
    static final GuestPlan KILL_READ = killRead();
    static final GuestPlan DETACH = detach();

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    private static List<GuestPlan> plans() {
        List<GuestPlan> plans = new ArrayList<>();
        for (String mode : MODES) {
            GuestPlan p = GuestPlan.writable("cache-" + mode, DISK, 2, 2)
                    .writeBack("write-back-cache")
                    .sysfs("logical-block-4k", "queue/logical_block_size", "eq", "4096");
            p.write("write-0", 4096, 0, 4 * MIB, 0)
                    .backgroundWrite("write-1-cpu1", 1, (int) (64 * KIB), 4 * MIB, 4 * MIB, 4 * MIB)
                    .waitWriters("write-1-written")
                    .read("reread-0", 4096, 0, 4 * MIB, 0)
                    .read("reread-0-again", (int) (64 * KIB), 0, 4 * MIB, 0)
                    // More than the 8 MiB cache holds: blocks are evicted (and, in write-back, written back first).
                    .write("write-2", (int) MIB, 12 * MIB, 6 * MIB, MIB)
                    .write("write-3", (int) (256 * KIB), 18 * MIB, 6 * MIB, 2 * MIB)
                    .discard("discard", 2 * MIB, MIB)
                    .zeroOut("zeroout", 5 * MIB, 512 * KIB)
                    .read("read-0-head", 4096, 0, 2 * MIB, 0)
                    .readZeros("discard-read", 4096, 2 * MIB, MIB)
                    .read("read-0-tail", (int) (64 * KIB), 3 * MIB, MIB, 3 * MIB)
                    .read("read-1-head", 4096, 4 * MIB, MIB, 4 * MIB)
                    .readZeros("zeroout-read", 4096, 5 * MIB, 512 * KIB)
                    .read("read-1-tail", (int) (128 * KIB), 5 * MIB + 512 * KIB, 2 * MIB + 512 * KIB, 5 * MIB + 512 * KIB)
                    .read("read-2", (int) (64 * KIB), 12 * MIB, 6 * MIB, MIB)
                    .read("read-3", 4096, 18 * MIB, 6 * MIB, 2 * MIB)
                    .readZeros("never-written-read", (int) (64 * KIB), 24 * MIB, 8 * MIB)
                    .queuesUsed("both-queues", 2);
            plans.add(p.fsync("final-fsync"));
        }
        return plans;
    }

    private static GuestPlan killWrite() {
        GuestPlan p = GuestPlan.writable("cache-kill-write", DISK, 1, 1).writeBack("write-back-cache");
        return p.write("write", (int) (64 * KIB), MIB, 4 * MIB, 0).fsync("fsync");
    }

    private static GuestPlan killRead() {
        GuestPlan p = GuestPlan.writable("cache-kill-read", DISK, 1, 1);
        return p.read("read-after-kill", 4096, MIB, 4 * MIB, 0).readZeros("rest", (int) (64 * KIB), 8 * MIB, 8 * MIB);
    }

    /**
     * Writes through a write-back cache that writes back slowly; at {@code SYNCED detach} the host disables the cache
     * while a background writer still writes; then the guest reads everything back (from the image now).
     */
    private static GuestPlan detach() {
        GuestPlan p = GuestPlan.writable("cache-detach", DISK, 2, 2).writeBack("write-back-cache");
        return p.write("write-0", 4096, 0, 4 * MIB, 0)
                .backgroundWrite("write-1-during-detach", 1, (int) (64 * KIB), 8 * MIB, 8 * MIB, 0)
                .flushedWrite("detach", (int) (64 * KIB), 4 * MIB, 2 * MIB, 4 * MIB)
                .waitWriters("write-1-written")
                .write("write-after-detach", 4096, 20 * MIB, MIB, 6 * MIB)
                .read("read-0", 4096, 0, 4 * MIB, 0)
                .read("read-detach", (int) (64 * KIB), 4 * MIB, 2 * MIB, 4 * MIB)
                .read("read-1", (int) (64 * KIB), 8 * MIB, 8 * MIB, 0)
                .read("read-after-detach", 4096, 20 * MIB, MIB, 6 * MIB)
                .readZeros("never-written-read", (int) (64 * KIB), 24 * MIB, 8 * MIB)
                .fsync("final-fsync");
    }

    @BeforeAll
    static void prepareGuest() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        List<GuestPlan> all = new ArrayList<>(PLANS);
        all.add(KILL_WRITE);
        all.add(KILL_READ);
        all.add(DETACH);
        initramfs = Initramfs.build(TARGET.resolve("guest-cache"), kernel, all);
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    @Test
    void guestsReadAndWriteThroughTheCacheInEveryMode() throws Exception {
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < MODES.length; i++) {
            String failure = runMode(MODES[i], PLANS.get(i));
            if (failure != null) {
                failures.add(failure);
            }
        }
        if (!failures.isEmpty()) {
            fail(String.join("\n\n", failures));
        }
    }

    private static String runMode(String mode, GuestPlan plan) throws Exception {
        Path runDir = runDir(plan);
        Path image = Files.write(runDir.resolve(DEVICE), new byte[(int) DISK]);
        Path cache = runDir.resolve("cache.bin");
        Path policy = ModuleJars.writePolicy(runDir, "policy", "cache-guest", CHAIN, "set.cache-file = " + cache, "set.size = 8M",
                "set.mode = " + mode);
        List<String> problems = new ArrayList<>();
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbc-");
        try {
            ExportSpec spec = new ExportSpec(image, DISK, plan.queues(), false, socketDir.resolve("blk.sock"),
                    runDir.resolve("backend.log"));
            Path control = socketDir.resolve("ctl.sock");
            try (CacheServer server = new CacheServer(spec, policy, control)) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, plan, spec.socket(), runDir, GUEST_TIMEOUT),
                        check -> "unexpected SYNCED " + check);
                run.problems(plan.checks()).forEach(p -> problems.add("guest: " + p));
                Map<?, ?> report = report(control, problems);
                StorageBackend.Exit exit = server.stop();
                if (!exit.clean()) {
                    problems.add("vhost-blk must exit with status 0 after SIGTERM, but it " + exit);
                }
                if (report != null) {
                    if (!(report.get("hits") instanceof Long hits && hits > 0)) {
                        problems.add("rereading what is cached must hit: " + report);
                    }
                    if (!(report.get("evictions") instanceof Long ev && ev > 0)) {
                        problems.add("writing more than the cache holds must evict: " + report);
                    }
                    if (!(report.get("requests_handed_over") instanceof Long handed && handed > 0)) {
                        problems.add("the second queue's requests must be handed to the cache's queue: " + report);
                    }
                }
                if (mode.equals("write-back")) {
                    cacheCommand(problems, "flush", cache.toString(), image.toString());
                }
                compare(plan, image, problems);
                if (!problems.isEmpty()) {
                    return "mode " + mode + ": " + problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems) + "\n"
                            + run.serialTail(30) + "\n--- vhost-blk log (" + spec.log() + ") ---\n" + server.logTail(60);
                }
                System.out.println("CacheGuestTest: mode " + mode + ": " + report);
                return null;
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
    }

    @Test
    void writeBackDataSurvivesKill9OfTheServer() throws Exception {
        Path runDir = runDir(KILL_WRITE);
        Path image = Files.write(runDir.resolve(DEVICE), new byte[(int) DISK]);
        Path cache = runDir.resolve("cache.bin");
        // Written back at 1 MiB/s at most: most of what the guest wrote is still only in the cache at the kill.
        Path policy = ModuleJars.writePolicy(runDir, "policy", "cache-guest", CHAIN, "set.cache-file = " + cache, "set.size = 16M",
                "set.mode = write-back", "set.writeback-rate = 1");
        List<String> problems = new ArrayList<>();
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbk-");
        try {
            ExportSpec spec = new ExportSpec(image, DISK, 1, false, socketDir.resolve("blk.sock"), runDir.resolve("backend.log"));
            Path control = socketDir.resolve("ctl.sock");
            try (CacheServer server = new CacheServer(spec, policy, control)) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, KILL_WRITE, spec.socket(), runDir, GUEST_TIMEOUT),
                        check -> "unexpected SYNCED " + check);
                run.problems(KILL_WRITE.checks()).forEach(p -> problems.add("first guest: " + p));
                server.close(); // SIGKILL
            }
            String status = cacheCommand(problems, "status", cache.toString());
            Matcher m = Pattern.compile("dirty blocks: (\\d+)").matcher(status);
            if (!m.find() || Long.parseLong(m.group(1)) == 0) {
                problems.add("after the kill the cache must still hold dirty blocks (else this test proves nothing): " + status);
            }
            Files.deleteIfExists(spec.socket());
            ExportSpec again = new ExportSpec(image, DISK, 1, false, socketDir.resolve("blk2.sock"), runDir.resolve("backend2.log"));
            try (CacheServer server = new CacheServer(again, policy, socketDir.resolve("ctl2.sock"))) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, KILL_READ, again.socket(), runDir, GUEST_TIMEOUT),
                        check -> "unexpected SYNCED " + check);
                run.problems(KILL_READ.checks()).forEach(p -> problems.add("second guest: " + p));
                StorageBackend.Exit exit = server.stop();
                if (!exit.clean()) {
                    problems.add("the second vhost-blk must exit with status 0 after SIGTERM, but it " + exit);
                }
                cacheCommand(problems, "flush", cache.toString(), image.toString());
                compare(KILL_WRITE, image, problems);
                if (!problems.isEmpty()) {
                    fail(problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems) + "\n" + run.serialTail(30)
                            + "\n--- first vhost-blk log ---\n" + Logs.tail(spec.log(), 40)
                            + "\n--- second vhost-blk log ---\n" + server.logTail(40));
                }
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
    }

    @Test
    void detachingAWriteBackCacheWhileTheGuestRunsWritesEveryDirtyBlockBack() throws Exception {
        Path runDir = runDir(DETACH);
        Path image = Files.write(runDir.resolve(DEVICE), new byte[(int) DISK]);
        Path cache = runDir.resolve("cache.bin");
        // Written back at 1 MiB/s at most: most of what the guest wrote is still only in the cache at the detach.
        Path policy = ModuleJars.writePolicy(runDir, "policy", "cache-guest", CHAIN, "set.cache-file = " + cache,
                "set.size = 16M", "set.mode = write-back", "set.writeback-rate = 1");
        List<String> problems = new ArrayList<>();
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbd-");
        try {
            ExportSpec spec = new ExportSpec(image, DISK, 2, false, socketDir.resolve("blk.sock"), runDir.resolve("backend.log"));
            Path control = socketDir.resolve("ctl.sock");
            try (CacheServer server = new CacheServer(spec, policy, control)) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, DETACH, spec.socket(), runDir, GUEST_TIMEOUT),
                        check -> check.equals("detach") ? detachCache(control) : "unexpected SYNCED " + check);
                run.problems(DETACH.checks()).forEach(p -> problems.add("guest: " + p));
                StorageBackend.Exit exit = server.stop();
                if (!exit.clean()) {
                    problems.add("vhost-blk must exit with status 0 after SIGTERM, but it " + exit);
                }
                // No 'cache flush': the detach must have put every write into the image.
                compare(DETACH, image, problems);
                if (!problems.isEmpty()) {
                    fail(problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems) + "\n" + run.serialTail(30)
                            + "\n--- vhost-blk log (" + spec.log() + ") ---\n" + server.logTail(60));
                }
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
    }

    /** At the guest's {@code SYNCED detach}: the cache must hold dirty blocks, then {@code ctl disable} must succeed. */
    private static String detachCache(Path control) {
        List<String> problems = new ArrayList<>();
        Map<?, ?> before = report(control, problems);
        if (before == null) {
            return String.join("; ", problems);
        }
        if (!(before.get("dirty_bytes") instanceof Long dirty && dirty > 0)) {
            return "the cache must hold dirty blocks before the detach (else this test proves nothing): " + before;
        }
        try (ControlClient c = ControlClient.connect(control)) {
            String reply = c.request("disable " + DEVICE + " cache");
            Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
            if (!Boolean.TRUE.equals(m.get("ok")) || !List.of().equals(m.get("chain"))) {
                return "disable of the write-back cache was refused or left a chain: " + reply;
            }
        } catch (IOException | Json.ParseException | RuntimeException e) {
            return "disable over the control socket: " + e;
        }
        return null;
    }

    private static Path runDir(GuestPlan plan) throws IOException {
        Path runDir = TARGET.resolve("qemu-runs").resolve(plan.name() + "-vhost_blk");
        TestDirs.deleteRecursively(runDir);
        return Files.createDirectories(runDir);
    }

    /** The image read on the host (read-only) must hold exactly what the guest wrote. */
    private static void compare(GuestPlan plan, Path image, List<String> problems) throws IOException {
        byte[] stored = Files.readAllBytes(image);
        byte[] expected = plan.expectedImage();
        int at = java.util.Arrays.mismatch(expected, stored);
        if (at >= 0) {
            problems.add("the image differs from what the guest wrote, first at byte " + at + " ("
                    + (at < expected.length ? plan.describeOffset(at) : "length") + ")");
        }
    }

    /** {@code vhost-blk cache ARGS} in this JVM (the CLI's code); a non-zero exit is a problem. */
    private static String cacheCommand(List<String> problems, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = new CacheCommand().run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8) + err.toString(StandardCharsets.UTF_8);
        if (status != 0) {
            problems.add("vhost-blk cache " + String.join(" ", args) + " exited " + status + ":\n" + text);
        }
        return text;
    }

    /** The cache module's report over the control socket. */
    private static Map<?, ?> report(Path control, List<String> problems) {
        try (ControlClient c = ControlClient.connect(control)) {
            String reply = c.request("report " + DEVICE + " cache");
            Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
            if (!Boolean.TRUE.equals(m.get("ok"))) {
                problems.add("report over the control socket was refused: " + reply);
                return null;
            }
            return (Map<?, ?>) m.get("report");
        } catch (IOException | Json.ParseException | RuntimeException e) {
            problems.add("report over the control socket: " + e);
            return null;
        }
    }

    /** vhost-blk serve with the policy, on a class path without the cache module: it must come from its jar. */
    private static final class CacheServer extends ProcessBackend {
        CacheServer(ExportSpec spec, Path policy, Path control) {
            super("vhost-blk server (cache)", spec, List.of(ModuleJars.java(), ServerJvm.OPTIONS, "-cp",
                    ModuleJars.serverClassPath(CHAIN), VhostBlkServer.MAIN_CLASS, "serve",
                    "--socket", spec.socket().toString(), "--disk", spec.image().toString(),
                    "--queues", Integer.toString(spec.queues()), "--policy", policy.toString(),
                    "--control", control.toString()));
        }
    }
}
