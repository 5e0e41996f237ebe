package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.modules.cache.CacheCommand;
import io.vhostblk.server.ControlClient;
import io.vhostblk.server.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Guests through the {@code cache} module (the jar loaded through a policy) on a cache file smaller than the disk:
 * in each mode a guest writes, rereads, discards, zeroes and reads everything back on two queues, and afterwards
 * the image (for write-back: after {@code vhost-blk cache flush}) holds exactly what it wrote. A write-back cache
 * whose server is killed with SIGKILL after the guest's fsync keeps the writes: a new server on the same cache
 * serves them to a second guest, and they reach the image.
 */
class CacheGuestTest {
    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-cache", Duration.ofSeconds(300), CacheGuestTest::allPlans);
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

    private static List<GuestPlan> allPlans() {
        List<GuestPlan> all = new ArrayList<>(PLANS);
        all.add(KILL_WRITE);
        all.add(KILL_READ);
        all.add(DETACH);
        return all;
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
        Path runDir = GuestHarness.runDir(plan.name() + "-vhost_blk");
        Path image = Files.write(runDir.resolve(DEVICE), new byte[(int) DISK]);
        Path cache = runDir.resolve("cache.bin");
        Path policy = ModuleJars.writePolicy(runDir, "policy", "cache-guest", CHAIN, "set.cache-file = " + cache, "set.size = 8M",
                "set.mode = " + mode);
        Problems problems = new Problems();
        try (SocketDir sockets = SocketDir.create("vbc-")) {
            ExportSpec spec = new ExportSpec(image, DISK, plan.queues(), false, sockets.resolve("blk.sock"),
                    runDir.resolve("backend.log"));
            Path control = sockets.resolve("ctl.sock");
            try (StorageBackend server = cacheServer(spec, policy, control)) {
                GuestRun run = HARNESS.boot(plan, spec.socket(), runDir, QemuGuest.NO_HOST_STEPS);
                problems.guest("guest: ", run, plan);
                Map<?, ?> report = Control.report(control, DEVICE, "cache", problems);
                problems.stop(server);
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
                    return problems.summary("mode " + mode) + "\n" + Problems.tails(run, 30, server);
                }
                System.out.println("CacheGuestTest: mode " + mode + ": " + report);
                return null;
            }
        }
    }

    @Test
    void writeBackDataSurvivesKill9OfTheServer() throws Exception {
        Path runDir = GuestHarness.runDir(KILL_WRITE.name() + "-vhost_blk");
        Path image = Files.write(runDir.resolve(DEVICE), new byte[(int) DISK]);
        Path cache = runDir.resolve("cache.bin");
        // Written back at 1 MiB/s at most: most of what the guest wrote is still only in the cache at the kill.
        Path policy = ModuleJars.writePolicy(runDir, "policy", "cache-guest", CHAIN, "set.cache-file = " + cache, "set.size = 16M",
                "set.mode = write-back", "set.writeback-rate = 1");
        Problems problems = new Problems();
        try (SocketDir sockets = SocketDir.create("vbk-")) {
            ExportSpec spec = new ExportSpec(image, DISK, 1, false, sockets.resolve("blk.sock"), runDir.resolve("backend.log"));
            try (StorageBackend server = cacheServer(spec, policy, sockets.resolve("ctl.sock"))) {
                GuestRun run = HARNESS.boot(KILL_WRITE, spec.socket(), runDir, QemuGuest.NO_HOST_STEPS);
                problems.guest("first guest: ", run, KILL_WRITE);
                server.close(); // SIGKILL
            }
            String status = cacheCommand(problems, "status", cache.toString());
            Matcher m = Pattern.compile("dirty blocks: (\\d+)").matcher(status);
            if (!m.find() || Long.parseLong(m.group(1)) == 0) {
                problems.add("after the kill the cache must still hold dirty blocks (else this test proves nothing): " + status);
            }
            Files.deleteIfExists(spec.socket());
            ExportSpec again = new ExportSpec(image, DISK, 1, false, sockets.resolve("blk2.sock"), runDir.resolve("backend2.log"));
            try (StorageBackend server = cacheServer(again, policy, sockets.resolve("ctl2.sock"))) {
                GuestRun run = HARNESS.boot(KILL_READ, again.socket(), runDir, QemuGuest.NO_HOST_STEPS);
                problems.guest("second guest: ", run, KILL_READ);
                problems.stop("the second vhost-blk", server);
                cacheCommand(problems, "flush", cache.toString(), image.toString());
                compare(KILL_WRITE, image, problems);
                problems.failIfAny("kill -9 of a write-back cache", () -> run.serialTail(30)
                        + "\n--- first vhost-blk log ---\n" + Logs.tail(spec.log(), 40)
                        + "\n--- second vhost-blk log ---\n" + server.logTail(40));
            }
        }
    }

    @Test
    void detachingAWriteBackCacheWhileTheGuestRunsWritesEveryDirtyBlockBack() throws Exception {
        Path runDir = GuestHarness.runDir(DETACH.name() + "-vhost_blk");
        Path image = Files.write(runDir.resolve(DEVICE), new byte[(int) DISK]);
        Path cache = runDir.resolve("cache.bin");
        // Written back at 1 MiB/s at most: most of what the guest wrote is still only in the cache at the detach.
        Path policy = ModuleJars.writePolicy(runDir, "policy", "cache-guest", CHAIN, "set.cache-file = " + cache,
                "set.size = 16M", "set.mode = write-back", "set.writeback-rate = 1");
        Problems problems = new Problems();
        try (SocketDir sockets = SocketDir.create("vbd-")) {
            ExportSpec spec = new ExportSpec(image, DISK, 2, false, sockets.resolve("blk.sock"), runDir.resolve("backend.log"));
            Path control = sockets.resolve("ctl.sock");
            try (StorageBackend server = cacheServer(spec, policy, control)) {
                GuestRun run = HARNESS.boot(DETACH, spec.socket(), runDir,
                        check -> check.equals("detach") ? detachCache(control) : "unexpected SYNCED " + check);
                problems.guest("guest: ", run, DETACH);
                problems.stop(server);
                // No 'cache flush': the detach must have put every write into the image.
                compare(DETACH, image, problems);
                problems.failIfAny("detach of a write-back cache", () -> Problems.tails(run, 30, server));
            }
        }
    }

    /** At the guest's {@code SYNCED detach}: the cache must hold dirty blocks, then {@code ctl disable} must succeed. */
    private static String detachCache(Path control) {
        Problems problems = new Problems();
        Map<?, ?> before = Control.report(control, DEVICE, "cache", problems);
        if (before == null) {
            return String.join("; ", problems.list());
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

    /** The image read on the host (read-only) must hold exactly what the guest wrote. */
    private static void compare(GuestPlan plan, Path image, Problems problems) throws IOException {
        problems.addIfAny("the image differs from what the guest wrote: ",
                DiskImage.firstDifference(plan.expectedImage(), Files.readAllBytes(image), plan));
    }

    /** {@code vhost-blk cache ARGS} in this JVM (the CLI's code); a non-zero exit is a problem. */
    private static String cacheCommand(Problems problems, String... args) {
        return Cli.run(problems, "cache", new CacheCommand()::run, args);
    }

    /** vhost-blk serve with the policy, on a class path without the cache module: it must come from its jar. */
    private static StorageBackend cacheServer(ExportSpec spec, Path policy, Path control) {
        List<String> args = new ArrayList<>(VhostBlkServer.imageArgs(spec));
        args.addAll(List.of("--policy", policy.toString(), "--control", control.toString()));
        return VhostBlkServer.serve("vhost-blk server (cache)", spec, ModuleJars.serverClassPath(CHAIN), args);
    }
}
