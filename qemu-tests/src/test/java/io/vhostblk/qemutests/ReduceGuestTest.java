package io.vhostblk.qemutests;

import io.vhostblk.modules.crypt.FormatOptions;
import io.vhostblk.modules.crypt.KdfOptions;
import io.vhostblk.modules.crypt.LuksVersion;
import io.vhostblk.modules.crypt.LuksVolume;
import io.vhostblk.modules.crypt.Secret;
import io.vhostblk.modules.crypt.UnlockedVolume;
import io.vhostblk.modules.reduce.FileBackingStore;
import io.vhostblk.modules.reduce.ReduceCommand;
import io.vhostblk.modules.reduce.ReduceVolume;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A guest on a reduce volume served through {@code dedup, compress} (one volume, the jar loaded through a
 * policy): it writes four copies of the same data, rewrites part of one, discards and zeroes parts, and reads
 * everything back, on two queues. After it powered off: {@code reduce check} is clean, the volume read on the
 * host holds exactly what the guest wrote, and the image's allocated size shows the duplicates stored once.
 */
class ReduceGuestTest {
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    /** The logical size the guest sees. */
    private static final long DISK = 48 * MIB;
    private static final long COPY = 4 * MIB;
    private static final String DEVICE = "disk.img";
    private static final List<String> CHAIN = List.of("dedup", "compress");

    static final GuestPlan PLAN = plan();

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-reduce", Duration.ofSeconds(300), () -> List.of(PLAN));

    private static GuestPlan plan() {
        GuestPlan p = GuestPlan.writable("reduce", DISK, 2, 2)
                .writeBack("write-back-cache")
                .sysfs("size-is-logical", "size", "eq", Long.toString(DISK / 512))
                .sysfs("logical-block-4k", "queue/logical_block_size", "eq", "4096");
        // Four copies of the same 4 MiB, one after the other (a block is found in the index once its first copy is
        // written): dedup stores them once. Copy 2 comes from the second vCPU, so through the second queue.
        p.write("copy-0", 4096, 0, COPY, 0)
                .write("copy-1", (int) (64 * KIB), 8 * MIB, COPY, 0)
                .backgroundWrite("copy-2-cpu1", 1, 4096, 16 * MIB, COPY, 0)
                .waitWriters("copy-2-written")
                .write("copy-3", (int) MIB, 24 * MIB, COPY, 0);
        // Rewrite 1 MiB in the middle of copy 1 with new data; its neighbours keep the shared blocks.
        p.write("rewrite", 4096, 9 * MIB, MIB, 5 * MIB);
        // Discard half of copy 3, zero a piece of copy 2.
        p.discard("discard", 26 * MIB, 2 * MIB)
                .zeroOut("zeroout", 17 * MIB, 512 * KIB);
        p.read("copy-0-read", (int) (64 * KIB), 0, COPY, 0)
                .read("copy-1-head-read", 4096, 8 * MIB, MIB, 0)
                .read("rewrite-read", (int) (128 * KIB), 9 * MIB, MIB, 5 * MIB)
                .read("copy-1-tail-read", 4096, 10 * MIB, 2 * MIB, 2 * MIB)
                .read("copy-2-head-read", 4096, 16 * MIB, MIB, 0)
                .readZeros("zeroout-read", 4096, 17 * MIB, 512 * KIB)
                .read("copy-2-tail-read", (int) (64 * KIB), 17 * MIB + 512 * KIB, 2 * MIB + 512 * KIB, MIB + 512 * KIB)
                .read("copy-3-head-read", 4096, 24 * MIB, 2 * MIB, 0)
                .readZeros("discard-read", (int) (64 * KIB), 26 * MIB, 2 * MIB)
                .readZeros("never-written-read", (int) (64 * KIB), 40 * MIB, 8 * MIB)
                .queuesUsed("both-queues", 2);
        return p.fsync("final-fsync");
    }

    @Test
    void guestWritesRewritesDiscardsAndReadsBackThroughDedupAndCompress() throws Exception {
        Path runDir = GuestHarness.runDir(PLAN.name() + "-vhost_blk");
        Path image = runDir.resolve(DEVICE);
        Problems problems = new Problems();
        String formatted = reduce(problems, "format", image.toString(), "--logical-size", Long.toString(DISK));
        // Hashing and compression on the volume's worker thread; the variant over crypt keeps them on the loop.
        Path policy = ModuleJars.writePolicy(runDir, "policy", "reduce-guest", CHAIN, Map.of("dedup", List.of("set.worker = on")));
        serve(runDir, image, policy, CHAIN, true, formatted, problems, () -> afterShutdown(image, problems));
    }

    /**
     * The same guest with the volume inside a LUKS image: {@code dedup, compress, crypt}. The volume is formatted in
     * a plain file and encrypted into the payload (as {@code reduce format} on {@code /dev/mapper/NAME} would), the
     * module opens it through crypt (its geometry from the setting {@code logical-size}), and after shutdown the
     * payload is decrypted with the crypt library to check it and read it back (docs/reduce.md: checking an
     * encrypted volume).
     */
    @Test
    void guestWritesRewritesDiscardsAndReadsBackThroughDedupAndCompressOverCrypt() throws Exception {
        Path runDir = GuestHarness.runDir(PLAN.name() + "-over_crypt");
        Problems problems = new Problems();
        Path plain = runDir.resolve("plain.img");
        String formatted = reduce(problems, "format", plain.toString(), "--logical-size", Long.toString(DISK));
        Path image = runDir.resolve(DEVICE); // a LUKS image; its name is the device id the report asks for
        long payload = Files.size(plain);
        try (Secret s = Secret.copyOf(EncryptedGuestTest.PASSPHRASE)) {
            LuksVolume.format(image, s, new FormatOptions(LuksVersion.LUKS1, 512, payload, KdfOptions.pbkdf2(1000)));
        }
        try (UnlockedVolume v = EncryptedGuestTest.unlock(image)) {
            EncryptedGuestTest.writePlaintext(v, 0, Files.readAllBytes(plain));
        }
        Files.delete(plain);
        Path key = EncryptedGuestTest.keyFile(runDir);
        List<String> chain = List.of("dedup", "compress", "crypt");
        Path policy = ModuleJars.writePolicy(runDir, "policy", "reduce-guest", chain, Map.of(
                "dedup", List.of("set.logical-size = " + DISK, "set.worker = off"),
                "crypt", List.of("set.key-file = " + key, "set.allow-discard = true")));
        serve(runDir, image, policy, chain, false, formatted, problems, () -> {
            byte[] raw = Files.readAllBytes(image);
            if (DiskImage.indexOf(raw, "VHBLKRED".getBytes(StandardCharsets.US_ASCII)) >= 0) {
                problems.add("the image holds a plain reduce superblock: the volume's metadata did not go through crypt");
            }
            Path decrypted = runDir.resolve("decrypted.img");
            try (UnlockedVolume v = EncryptedGuestTest.unlock(image)) {
                Files.write(decrypted, EncryptedGuestTest.readPlaintext(v, 0, (int) payload));
            }
            String check = reduce(problems, "check", decrypted.toString());
            String diff = DiskImage.firstDifference(PLAN.expectedImage(), readVolume(decrypted), PLAN);
            if (diff != null) {
                problems.add("the decrypted volume read on the host differs from what the guest wrote: " + diff);
            }
            System.out.println("ReduceGuestTest over crypt: " + check.strip().replace('\n', ' '));
        });
    }

    /** What to check once the guest is gone and the server stopped. */
    private interface AfterShutdown {
        void check() throws Exception;
    }

    /** Boots the plan against vhost-blk serving {@code image} with {@code policy}; fails with every problem found. */
    private static void serve(Path runDir, Path image, Path policy, List<String> chain, boolean worker, String formatted, Problems problems,
                              AfterShutdown after) throws Exception {
        try (SocketDir sockets = SocketDir.create("vbr-")) {
            ExportSpec spec = new ExportSpec(image, Files.size(image), PLAN.queues(), false, sockets.resolve("blk.sock"),
                    runDir.resolve("backend.log"));
            Path control = sockets.resolve("ctl.sock");
            List<String> args = new ArrayList<>(VhostBlkServer.imageArgs(spec));
            args.addAll(List.of("--policy", policy.toString(), "--control", control.toString()));
            // On a class path without the reduce module: it must come from its jar.
            try (StorageBackend server = VhostBlkServer.serve("vhost-blk server (reduce)", spec,
                    ModuleJars.serverClassPath(chain), args)) {
                GuestRun run = HARNESS.boot(PLAN, spec.socket(), runDir, QemuGuest.NO_HOST_STEPS);
                problems.guest("guest: ", run, PLAN);
                Map<?, ?> report = Control.report(control, DEVICE, "dedup", problems);
                problems.stop(server);
                if (report != null) {
                    if (!(report.get("dedup_hits") instanceof Long hits && hits >= 2 * COPY / 4096)) {
                        problems.add("the volume's report must count the duplicate copies as dedup hits: " + report);
                    }
                    if (!(report.get("requests_handed_over") instanceof Long handed && handed > 0)) {
                        problems.add("the second queue's requests must be handed to the volume's queue: " + report);
                    }
                    if (!Boolean.valueOf(worker).equals(report.get("worker"))) {
                        problems.add("the volume must hash and compress " + (worker ? "on its worker thread" : "on the loop")
                                + " as the policy says: " + report);
                    }
                }
                after.check();
                problems.failIfAny("plan '" + PLAN.name() + "' through " + chain + " (" + formatted.strip() + ")",
                        () -> Problems.tails(run, 30, server));
            }
        }
    }

    /** The guest is gone and the server stopped: check, contents and allocated size of the image. */
    private static void afterShutdown(Path image, Problems problems) throws Exception {
        String check = reduce(problems, "check", image.toString());
        byte[] stored = readVolume(image);
        String diff = DiskImage.firstDifference(PLAN.expectedImage(), stored, PLAN);
        if (diff != null) {
            problems.add("the volume read on the host differs from what the guest wrote: " + diff);
        }
        // Mapped: copies 0 and 1 (8 MiB), copy 2 less the zeroed 512 KiB, half of copy 3: 13.5 MiB of data whose
        // distinct content is 4 MiB plus the 1 MiB rewrite. Allocated must be well under the mapped bytes.
        long mapped = 3 * COPY + COPY / 2 - 512 * KIB;
        long allocated = allocatedBytes(image);
        if (allocated >= mapped / 2) {
            problems.add("the image allocates " + allocated + " bytes for " + mapped + " bytes of guest data of which only "
                    + (COPY + MIB) + " are distinct: the duplicates are not stored once (check said: " + check.strip() + ")");
        }
        System.out.println("ReduceGuestTest: " + mapped + " bytes mapped, " + allocated + " bytes allocated in the image; "
                + check.strip().replace('\n', ' '));
    }

    /** {@code vhost-blk reduce ARGS} in this JVM (the CLI's code); a non-zero exit is a problem. */
    static String reduce(Problems problems, String... args) {
        return Cli.run(problems, "reduce", (a, out, err) -> new ReduceCommand(out, err).run(a), args);
    }

    /** Every logical byte of the volume, read through the engine on the host. */
    static byte[] readVolume(Path image) throws Exception {
        try (FileBackingStore store = FileBackingStore.open(image, false);
             ReduceVolume v = ReduceVolume.open(store, "host-read", ReduceVolume.Options.both());
             Arena arena = Arena.ofConfined()) {
            MemorySegment all = arena.allocate(v.logicalSize(), 4096);
            CompletableFuture<Integer> done = new CompletableFuture<>();
            v.read(0, all, done::complete);
            int result = done.get(60, TimeUnit.SECONDS);
            if (result != 0) {
                throw new IOException("reading the volume on the host failed with " + result);
            }
            return all.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Blocks the file takes on the disk (st_blocks × 512), as {@code du} counts them. */
    private static long allocatedBytes(Path image) {
        return Long.parseLong(HostTools.run(List.of("stat", "-c", "%b", image.toString()), 30).strip()) * 512;
    }
}
