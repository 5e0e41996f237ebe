package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.RegisterExtension;
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
    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest", Duration.ofSeconds(180), GuestPlans::all);

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
        Path runDir = GuestHarness.runDir(plan.name() + "-" + backend.name().toLowerCase() + "-" + ring.name().toLowerCase());
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, plan);
        byte[] expected = plan.expectedImage();
        String checksumBefore = DiskImage.sha256(image);
        try (SocketDir sockets = SocketDir.create("vb-")) {
            ExportSpec spec = new ExportSpec(image, plan.diskSize(), plan.queues(), plan.isReadOnly(),
                    sockets.resolve("blk.sock"), runDir.resolve("backend.log"));
            try (StorageBackend server = backend.start(spec)) {
                GuestRun run = HARNESS.boot(plan, spec.socket(), runDir, ring, check -> verifyFlushed(image, plan, check));
                String imageAfterGuest = DiskImage.compare(image, expected, plan);
                Problems problems = new Problems();
                problems.stop(server);
                String imageAfterStop = DiskImage.compare(image, expected, plan);
                String checksumAfter = DiskImage.sha256(image);
                problems.guest("guest: ", run, plan);
                problems.hostVerdicts("image file after the guest's FLUSH of ", run);
                problems.addIfAny("image file after the guest powered off (its last request was a FLUSH): ", imageAfterGuest);
                if (imageAfterStop != null && !imageAfterStop.equals(imageAfterGuest)) {
                    problems.add("image file after " + server.name() + " stopped: " + imageAfterStop);
                }
                problems.addIfAny("", VhostBlkServer.ringProblem(backend, ring, spec.log(), plan.queues()));
                if (plan.isReadOnly() && !checksumBefore.equals(checksumAfter)) {
                    problems.add("the read-only export changed the image: SHA-256 " + checksumBefore + " before, "
                            + checksumAfter + " after");
                }
                problems.failIfAny("plan '" + plan.name() + "' against " + server.name() + " (guest ran "
                        + run.elapsed().toSeconds() + " s)", () -> Problems.tails(run, 40, server));
            }
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
