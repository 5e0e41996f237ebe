package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.bench.CrashWorkload;
import io.vhostblk.modules.crypt.FormatOptions;
import io.vhostblk.modules.crypt.KdfOptions;
import io.vhostblk.modules.crypt.LuksVersion;
import io.vhostblk.modules.crypt.LuksVolume;
import io.vhostblk.modules.crypt.Secret;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The crash campaign: for each module stack, a write/flush load whose data encodes offset and
 * generation ({@link CrashWorkload}) runs against a vhost-blk server that is then crashed: killed
 * with SIGKILL after a random number of requests, or made to lose every write no completed flush
 * covered ({@code --inject power-cut,reorder=SEED}, then stopped). The next server on the same image
 * must open it without repair and read back: every write acknowledged before the last completed
 * flush at its newest generation or later, no block holding another block's data or garbage.
 * Trials chain on one image: each server verifies the previous crash, then runs the next load.
 *
 * <p>{@code -Dvhostblk.crash.trials=N} (default 10, so 20 per stack) trials per stack and crash kind;
 * {@code -Dvhostblk.crash.seed=S} changes the random choices (default 1); {@code -Dvhostblk.crash.stack=NAME} runs
 * one stack only.
 */
class CrashCampaignTest {
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final int BLOCKS = 256;
    private static final int BLOCK_SIZE = 4096;
    private static final long DISK = 4L << 20;
    private static final int TRIALS = Integer.getInteger("vhostblk.crash.trials", 10);
    private static final long SEED = Long.getLong("vhostblk.crash.seed", 1);
    private static final byte[] PASSPHRASE = "crash campaign passphrase".getBytes(StandardCharsets.US_ASCII);

    /** Makes the image a stack serves and returns the extra {@code serve} options it needs. */
    @FunctionalInterface
    interface StackSetup {
        List<String> prepare(Path runDir, Path image) throws IOException;
    }

    /** A module stack under test: adding one is one line in {@link #STACKS}. */
    record Stack(String name, StackSetup setup) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** How a trial crashes the server. */
    enum Crash { KILL, POWER_CUT }

    static final List<Stack> STACKS = List.of(
            new Stack("plain", CrashCampaignTest::plain),
            new Stack("crypt", CrashCampaignTest::crypt),
            new Stack("dedup+compress", CrashCampaignTest::reduce),
            new Stack("cache-write-back", CrashCampaignTest::writeBackCache),
            new Stack("cache+dedup+compress+crypt", CrashCampaignTest::allModules));

    static Stream<Arguments> stacksAndCrashes() {
        String only = System.getProperty("vhostblk.crash.stack");
        return STACKS.stream().filter(s -> only == null || s.name().equals(only)).flatMap(s -> Stream.of(Arguments.of(s, Crash.KILL), Arguments.of(s, Crash.POWER_CUT)));
    }

    private static List<String> plain(Path runDir, Path image) throws IOException {
        TestDirs.sparseImage(image, DISK);
        return List.of();
    }

    private static List<String> crypt(Path runDir, Path image) throws IOException {
        Path key = Files.write(runDir.resolve("passphrase"), PASSPHRASE);
        try (Secret s = Secret.copyOf(PASSPHRASE)) {
            LuksVolume.format(image, s, new FormatOptions(LuksVersion.LUKS2, 512, DISK, KdfOptions.pbkdf2(1000)));
        }
        // The header is read from the image itself: the fault-injecting driver is no image file to the module.
        return List.of("--policy", CryptModule.writePolicy(runDir.resolve("policy.conf"), "crash", key,
                "set.header-file = " + image).toString());
    }

    private static List<String> reduce(Path runDir, Path image) throws IOException {
        formatReduceVolume(image);
        // The volume opens through the fault-injecting driver (a power cut also hits the open's writes); its size
        // comes from the setting, as for any layer beneath that is no plain image file.
        return List.of("--policy", ModuleJars.writePolicy(runDir, "policy", "crash", List.of("dedup", "compress"),
                java.util.Map.of("dedup", List.of("set.logical-size = " + DISK))).toString());
    }

    private static void formatReduceVolume(Path file) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        int status = new io.vhostblk.modules.reduce.ReduceCommand(new java.io.PrintStream(out, true, StandardCharsets.UTF_8),
                new java.io.PrintStream(out, true, StandardCharsets.UTF_8))
                .run(List.of("format", file.toString(), "--logical-size", Long.toString(DISK)));
        if (status != 0) {
            fail("vhost-blk reduce format " + file + " exited " + status + ": " + out.toString(StandardCharsets.UTF_8));
        }
    }

    /**
     * Every data service at once, in the order the issue names (nearest the guest first): a write-back cache over a
     * dedup+compress volume inside a LUKS2 image. The volume is formatted in a plain file and encrypted into the
     * payload (as {@code reduce format} on {@code /dev/mapper/NAME} would); a power cut drops what the image did not
     * flush, beneath all three layers.
     */
    private static List<String> allModules(Path runDir, Path image) throws IOException {
        Path plain = runDir.resolve("volume.plain");
        formatReduceVolume(plain);
        try (Secret s = Secret.copyOf(PASSPHRASE)) {
            LuksVolume.format(image, s, new FormatOptions(LuksVersion.LUKS2, 512, Files.size(plain), KdfOptions.pbkdf2(1000)));
            try (io.vhostblk.modules.crypt.UnlockedVolume v = LuksVolume.unlock(image, s)) {
                EncryptedGuestTest.writePlaintext(v, 0, Files.readAllBytes(plain));
            }
        }
        Files.delete(plain);
        Path key = Files.write(runDir.resolve("passphrase"), PASSPHRASE);
        return List.of("--policy", ModuleJars.writePolicy(runDir, "policy", "crash", List.of("cache", "dedup", "compress", "crypt"),
                java.util.Map.of(
                        "cache", List.of("set.cache-file = " + runDir.resolve("cache.bin"), "set.size = 2M",
                                "set.mode = write-back", "set.volume = crash-volume"),
                        // Hashing and compression on the volume's worker thread here; the dedup+compress stack keeps them
                        // on the loop (the default).
                        "dedup", List.of("set.logical-size = " + DISK, "set.worker = on"),
                        "crypt", List.of("set.key-file = " + key, "set.header-file = " + image, "set.allow-discard = true")))
                .toString());
    }

    /**
     * A write-back cache on a file of its own over the image: a power cut loses what the image did not flush (the
     * cache's write-backs included), a kill loses the process with writes acknowledged only on the cache.
     */
    private static List<String> writeBackCache(Path runDir, Path image) throws IOException {
        TestDirs.sparseImage(image, DISK);
        // The volume is named: the fault-injecting driver's target is not the image path the prefill server sees.
        return List.of("--policy", ModuleJars.writePolicy(runDir, "policy", "crash", List.of("cache"),
                "set.cache-file = " + runDir.resolve("cache.bin"), "set.size = 2M", "set.mode = write-back",
                "set.volume = crash-volume").toString());
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("stacksAndCrashes")
    void acknowledgedFlushedWritesSurviveCrashes(Stack stack, Crash crash) throws Exception {
        String label = stack.name() + "-" + crash.name().toLowerCase();
        Path runDir = TestDirs.fresh(TARGET.resolve("crash-runs").resolve(label));
        Path image = runDir.resolve("disk.img");
        List<String> stackArgs = stack.setup().prepare(runDir, image);
        SplittableRandom random = new SplittableRandom(SEED * 31 + label.hashCode());
        CrashWorkload load = new CrashWorkload(BLOCKS, BLOCK_SIZE, 8, 8, random.nextLong());
        List<String> violations = new ArrayList<>();
        try (SocketDir sockets = SocketDir.create("vbx-")) {
            Path socketDir = sockets.path();
            try (StorageBackend server = start(image, stackArgs, socketDir, runDir, "prefill")) {
                try (CrashWorkload.Run run = load.connect(server.socket())) {
                    run.prefill();
                }
                requireCleanExit(server, "prefill");
            }
            for (int trial = 0; trial <= TRIALS; trial++) {
                List<String> args = new ArrayList<>(stackArgs);
                if (crash == Crash.POWER_CUT) {
                    args.addAll(List.of("--inject", "power-cut,reorder=" + (random.nextLong() & Long.MAX_VALUE)));
                }
                String name = "trial-" + trial;
                long requests = 20 + random.nextInt(500);
                try (StorageBackend server = start(image, args, socketDir, runDir, name);
                     CrashWorkload.Run run = load.connect(server.socket())) {
                    // The volume opened; it must hold what the contract promises after the last crash.
                    for (String v : run.verify()) {
                        violations.add(trial == 0 ? "after the prefill: " + v : "after trial " + (trial - 1) + ": " + v);
                    }
                    if (trial == TRIALS) {
                        requireCleanExit(server, name);
                        break;
                    }
                    String stopped = run.run(requests);
                    if (stopped != null) {
                        violations.add(name + ": the load stopped before the crash: " + stopped);
                    }
                    if (crash == Crash.KILL) {
                        server.close(); // SIGKILL, with requests in flight
                    } else {
                        requireCleanExit(server, name); // the power-cut driver rolls back as it closes
                    }
                }
            }
        }
        if (!violations.isEmpty()) {
            fail(label + ": " + violations.size() + " violation(s) of the crash contract in " + TRIALS + " trials ("
                    + load + "); logs in " + runDir + "\n  - " + String.join("\n  - ", violations.subList(0, Math.min(40, violations.size()))));
        }
        System.out.println("[crash-campaign] " + label + ": " + TRIALS + " trials, 0 violations; " + load);
    }

    private static StorageBackend start(Path image, List<String> args, Path socketDir, Path runDir, String name)
            throws IOException {
        ExportSpec spec = new ExportSpec(image, Files.size(image), 1, false, socketDir.resolve(name + ".sock"),
                runDir.resolve(name + ".log"), args);
        return VhostBlkServer.start(spec);
    }

    private static void requireCleanExit(StorageBackend server, String name) throws InterruptedException {
        StorageBackend.Exit exit = server.stop();
        if (!exit.clean()) {
            fail(name + ": the server must exit with status 0 after SIGTERM, but it " + exit + "\n" + server.logTail(30));
        }
    }
}
