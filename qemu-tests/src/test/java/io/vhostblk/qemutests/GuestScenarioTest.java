package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Boots real Linux guests under QEMU whose disk is a vhost-user-blk device, against each back-end, and
 * checks what the guest reads and writes both from inside the guest and in the image file on the host.
 * vhost-blk runs each scenario on split and on packed virtqueues (qemu-storage-daemon offers no
 * packed rings, so it runs split only).
 */
class GuestScenarioTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(180);
    private static final Path TARGET = Path.of("target").toAbsolutePath();

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    @BeforeAll
    static void prepareGuest() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        initramfs = Initramfs.build(TARGET.resolve("guest"), kernel, GuestPlans.all());
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    /** Every back-end on split rings, and vhost-blk on packed rings too. */
    static Stream<Arguments> backendsAndRings() {
        return Stream.of(Arguments.of(Backend.QSD, QemuGuest.Ring.SPLIT),
                Arguments.of(Backend.VHOST_BLK, QemuGuest.Ring.SPLIT),
                Arguments.of(Backend.VHOST_BLK, QemuGuest.Ring.PACKED));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndRings")
    void directIoFlushDiscardAndWriteZeroes(Backend backend, QemuGuest.Ring ring) throws Exception {
        runPlan(backend, ring, GuestPlans.READ_WRITE);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndRings")
    void multiQueueParallelWriters(Backend backend, QemuGuest.Ring ring) throws Exception {
        runPlan(backend, ring, GuestPlans.MULTI_QUEUE);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndRings")
    void readOnlyExport(Backend backend, QemuGuest.Ring ring) throws Exception {
        runPlan(backend, ring, GuestPlans.READ_ONLY);
    }

    /**
     * One boot: start the back-end on a fresh image, run the plan in the guest, then check the guest's
     * reports, the image after the guest is gone, the back-end's clean shutdown, and the image again.
     */
    private static void runPlan(Backend backend, QemuGuest.Ring ring, GuestPlan plan) throws Exception {
        Path runDir = TARGET.resolve("qemu-runs").resolve(plan.name() + "-" + backend.name().toLowerCase()
                + "-" + ring.name().toLowerCase());
        TestDirs.deleteRecursively(runDir);
        Files.createDirectories(runDir);
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, plan);
        byte[] expected = plan.expectedImage();
        String checksumBefore = DiskImage.sha256(image);

        // sun_path holds 108 bytes: the socket lives in a short /tmp directory, not under target/.
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vb-");
        try {
            ExportSpec spec = new ExportSpec(image, plan.diskSize(), plan.queues(), plan.isReadOnly(),
                    socketDir.resolve("blk.sock"), runDir.resolve("backend.log"));
            try (StorageBackend server = backend.start(spec)) {
                GuestRun run = QemuGuest.run(
                        new QemuGuest.Config(kernel, initramfs, plan, spec.socket(), runDir, GUEST_TIMEOUT, ring),
                        check -> verifyFlushed(image, plan, check));
                String imageAfterGuest = DiskImage.compare(image, expected, plan);
                StorageBackend.Exit exit = server.stop();
                String imageAfterStop = DiskImage.compare(image, expected, plan);
                String checksumAfter = DiskImage.sha256(image);
                // Every check is evaluated and reported together, followed once by the logs.
                List<String> problems = new ArrayList<>();
                run.problems(plan.checks()).forEach(p -> problems.add("guest: " + p));
                run.hostProblems().forEach(p -> problems.add("image file after the guest's FLUSH of " + p));
                if (imageAfterGuest != null) {
                    problems.add("image file after the guest powered off (its last request was a FLUSH): "
                            + imageAfterGuest);
                }
                if (!exit.clean()) {
                    problems.add(server.name() + " must exit with status 0 within "
                            + ProcessBackend.STOP_TIMEOUT.toSeconds() + " s of SIGTERM, but it " + exit);
                }
                if (imageAfterStop != null && !imageAfterStop.equals(imageAfterGuest)) {
                    problems.add("image file after " + server.name() + " stopped: " + imageAfterStop);
                }
                String ringProblem = VhostBlkServer.ringProblem(backend, ring, spec.log(), plan.queues());
                if (ringProblem != null) {
                    problems.add(ringProblem);
                }
                if (plan.isReadOnly() && !checksumBefore.equals(checksumAfter)) {
                    problems.add("the read-only export changed the image: SHA-256 " + checksumBefore + " before, "
                            + checksumAfter + " after");
                }
                if (!problems.isEmpty()) {
                    fail("plan '" + plan.name() + "' against " + server.name() + " (guest ran "
                            + run.elapsed().toSeconds() + " s): " + problems.size() + " problem(s)\n  - "
                            + String.join("\n  - ", problems) + "\n" + run.serialTail(40) + "\n--- "
                            + server.name() + " log (" + spec.log() + ") ---\n" + server.logTail(40));
                }
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
    }

    /** Host side of the guest's SYNCED handshake: the flushed write must already be in the image file. */
    private static String verifyFlushed(Path image, GuestPlan plan, String check) {
        GuestPlan.Region region = plan.flushedWrite(check);
        if (region == null) {
            return "the guest announced SYNCED for '" + check + "', which is no flushed write of the plan";
        }
        try {
            return DiskImage.compareRange(image, region);
        } catch (IOException e) {
            return "cannot read " + image + ": " + e;
        }
    }
}
