package io.vhostblk.qemutests;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Restarting {@code vhost-blk serve} under a running guest: QEMU holds the vhost-user socket with
 * {@code reconnect=1}; the guest runs a write+verify loop whose data encodes block and generation
 * (parallel O_DIRECT writers, fsync, read-back); after each generation the host checks the image
 * file, and at a random moment of a generation's I/O it stops the server (SIGKILL or SIGTERM) and
 * starts a new one on the same socket and image.
 * The guest must see no I/O error and read back every block with its latest generation.
 */
class RestartGuestTest {
    private static final int BLOCKS = 256;
    private static final int RESTARTS = 10;
    private static final int GENERATIONS = RESTARTS + 2;
    /** The kill lands this long (uniformly random) after the guest announced a generation's I/O. */
    private static final int MAX_KILL_DELAY_MILLIS = 1500;
    private static final GuestPlan PLAN = GuestPlan.writable("restart-loop", 8L << 20, 2, 1)
            .generations("generations", BLOCKS, GENERATIONS);

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-restart", Duration.ofSeconds(900), () -> List.of(PLAN));

    /** How the running server is taken down. */
    enum Stop {
        SIGKILL, SIGTERM
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Stop.class)
    void guestKeepsItsDataAcrossTenServerRestarts(Stop how) throws Exception {
        runRestarts(how, QemuGuest.Ring.SPLIT);
    }

    /**
     * Packed rings across SIGTERM restarts: each server records where its stopped ring stands in
     * the inflight area, and the next resumes there although QEMU sends a stale vring base. (A
     * SIGKILL loses a packed ring's position and requests in flight: the next server refuses the
     * ring instead of guessing, see docs/operations.md.)
     */
    @Test
    void packedRingGuestKeepsItsDataAcrossTenGracefulRestarts() throws Exception {
        runRestarts(Stop.SIGTERM, QemuGuest.Ring.PACKED);
    }

    private void runRestarts(Stop how, QemuGuest.Ring ring) throws Exception {
        Path runDir = GuestHarness.runDir("restart-" + how.name().toLowerCase() + "-" + ring.name().toLowerCase());
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, PLAN);
        long seed = System.nanoTime();
        try (SocketDir sockets = SocketDir.create("vb-");
             Restarter restarter = new Restarter(how, new ExportSpec(image, PLAN.diskSize(), 1, false,
                     sockets.resolve("blk.sock"), runDir.resolve("backend-0.log")), new Random(seed))) {
            GuestRun run = QemuGuest.run(HARNESS.config(PLAN, restarter.spec.socket(), runDir, ring),
                    check -> {
                        int generation = Integer.parseInt(check.substring(check.indexOf('-') + 1));
                        if (check.startsWith("go-")) {
                            // Generations 2 .. RESTARTS+1 each lose their server somewhere in their I/O.
                            if (generation >= 2 && generation <= RESTARTS + 1) {
                                restarter.restartSoon();
                            }
                            return null;
                        }
                        return checkGeneration(image, BLOCKS, generation);
                    }, ",reconnect=1");
            restarter.finish();
            Problems problems = new Problems();
            problems.guest("guest: ", run, PLAN);
            problems.hostVerdicts("image file at ", run);
            restarter.problems.forEach(problems::add);
            if (restarter.restarts != RESTARTS) {
                problems.add("the server was restarted " + restarter.restarts + " times, expected " + RESTARTS);
            }
            problems.addIfAny("image file after the guest powered off: ", checkGeneration(image, BLOCKS, GENERATIONS));
            problems.stop("the last server", restarter.current);
            // The first restarted server served the guest's I/O of generation 2 (the last may start after the guest is gone).
            Path firstRestarted = restarter.spec.log().resolveSibling("backend-1.log");
            problems.addIfAny("server 1: ", VhostBlkServer.ringProblem(Backend.VHOST_BLK, ring, firstRestarted, 1));
            problems.failIfAny(how + " restarts on " + ring + " rings (seed " + seed + ", guest ran " + run.elapsed().toSeconds()
                    + " s)", () -> Problems.tails(run, 40, restarter.current));
        }
    }

    /** Null if each of the first {@code blocks} blocks of the image holds its record for {@code generation}, else the first few that do not. */
    static String checkGeneration(Path image, int blocks, int generation) {
        List<String> wrong = new ArrayList<>();
        byte[] got = new byte[GuestPlan.GENERATION_BLOCK];
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
            for (int b = 0; b < blocks; b++) {
                f.seek((long) b * got.length);
                f.readFully(got);
                if (!Arrays.equals(got, GuestPlan.generationBlock(b, generation)) && wrong.size() < 4) {
                    wrong.add("block " + b + " starts '" + new String(got, 0, 15, java.nio.charset.StandardCharsets.ISO_8859_1)
                            + "'");
                }
            }
        } catch (IOException e) {
            return "cannot read " + image + ": " + e;
        }
        return wrong.isEmpty() ? null : "generation " + generation + ": " + String.join(", ", wrong);
    }

    /** Owns the current server process and replaces it, one restart at a time, on its own thread. */
    private static final class Restarter implements AutoCloseable {
        final ExportSpec spec;
        final List<String> problems = Collections.synchronizedList(new ArrayList<>());
        private final Stop how;
        private final Random random;
        private final ExecutorService thread = Executors.newSingleThreadExecutor(
                r -> Thread.ofPlatform().name("server-restarter").daemon().unstarted(r));
        volatile StorageBackend current;
        volatile int restarts;
        /** QEMU has exited: a server started now has no front-end left to wait for. */
        private volatile boolean guestGone;

        Restarter(Stop how, ExportSpec spec, Random random) {
            this.how = how;
            this.spec = spec;
            this.random = random;
            this.current = VhostBlkServer.start(spec);
        }

        void restartSoon() {
            int delay = random.nextInt(MAX_KILL_DELAY_MILLIS);
            thread.execute(() -> {
                try {
                    Thread.sleep(delay);
                    StorageBackend old = current;
                    if (how == Stop.SIGKILL) {
                        old.close();
                    } else {
                        StorageBackend.Exit exit = old.stop();
                        if (!exit.clean()) {
                            problems.add("server " + restarts + " " + exit + " (SIGTERM " + delay + " ms into a generation)");
                        }
                    }
                    // A killed server leaves its socket file behind: remove it, so "socket exists" means "listening".
                    Files.deleteIfExists(spec.socket());
                    int n = restarts + 1;
                    ExportSpec next = new ExportSpec(spec.image(), spec.size(), spec.queues(), false,
                            spec.socket(), spec.log().resolveSibling("backend-" + n + ".log"));
                    current = VhostBlkServer.start(next);
                    restarts = n;
                    awaitRingStarted(next.log());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (IOException | RuntimeException | AssertionError e) {
                    problems.add("restart " + (restarts + 1) + " failed: " + e.getMessage());
                }
            });
        }

        /**
         * Waits until QEMU has set the new server's ring up, so the next kill lands in guest I/O, not
         * in the vhost-user handshake: QEMU 7.2 does not recover from a back-end that dies during
         * its setup messages ("vhost_backend_init failed: Protocol error"), and the guest hangs.
         */
        private void awaitRingStarted(Path log) throws IOException, InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.readString(log).contains(": vring 0 started")) {
                if (guestGone) {
                    // The last restart can land after the guest finished its plan and powered off
                    // (a slow machine): no QEMU will connect, and the guest's own checks already ran.
                    return;
                }
                if (System.nanoTime() > deadline) {
                    problems.add("QEMU did not start the ring on restarted server " + restarts + " within 60 s");
                    return;
                }
                Thread.sleep(50);
            }
        }

        /** The guest is gone (QEMU exited): waits for a restart still under way. */
        void finish() throws InterruptedException {
            guestGone = true;
            thread.shutdown();
            if (!thread.awaitTermination(60, TimeUnit.SECONDS)) {
                problems.add("a server restart did not finish within 60 s");
            }
        }

        @Override
        public void close() {
            thread.shutdownNow();
            current.close();
        }
    }
}
