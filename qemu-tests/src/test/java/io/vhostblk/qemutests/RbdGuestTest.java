package io.vhostblk.qemutests;

import io.vhostblk.modules.crypt.LuksVersion;
import io.vhostblk.modules.crypt.UnlockedVolume;
import io.vhostblk.testsupport.CephCluster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Real guests whose disk is a Ceph RBD image served by vhost-blk's rbd driver, on a single-node
 * cluster started for this class: direct I/O of every size, FLUSH, DISCARD and WRITE_ZEROES on one
 * queue, parallel writers on two queues, and the crypt module above the driver. After each guest
 * the image is read back with {@code rbd export} and compared with what the guest wrote; the guest's
 * FLUSHed write is checked with {@code rbd export} while the guest waits.
 */
class RbdGuestTest {
    /** Before the cluster starts (JUnit runs an extension's beforeAll before the class's own), after it stops. */
    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-rbd", Duration.ofSeconds(240),
            () -> List.of(GuestPlans.READ_WRITE, GuestPlans.MULTI_QUEUE, EncryptedGuestTest.ENCRYPTED_RW,
                    HotplugGuestTest.RESIZE, ReduceGuestTest.PLAN));

    private static CephCluster cluster;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = CephCluster.start(GuestHarness.TARGET);
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void directIoFlushDiscardAndWriteZeroesOnAnRbdImage() throws Exception {
        plainGuest(GuestPlans.READ_WRITE);
    }

    @Test
    void twoQueuesWithParallelWritersOnAnRbdImage() throws Exception {
        plainGuest(GuestPlans.MULTI_QUEUE);
    }

    private static void plainGuest(GuestPlan plan) throws Exception {
        Path runDir = freshRunDir(plan);
        String image = importPlanImage(plan, runDir, plan.diskSize());
        Problems problems = boot(plan, runDir, image, List.of(), (export, check) -> {
            GuestPlan.Region r = plan.flushedWrite(check);
            return r == null ? "no flushed write named " + check : DiskImage.compareRange(export, r);
        });
        Path export = export(image, runDir);
        problems.addIfAny("rbd export after the guest: ", DiskImage.compare(export, plan.expectedImage(), plan));
        report(plan, problems, runDir);
    }

    /** {@code ctl resize} under a running guest: rbd_resize, the guest sees and uses the new end, rbd export agrees. */
    @Test
    void liveResizeOfAnRbdImage() throws Exception {
        GuestPlan plan = HotplugGuestTest.RESIZE;
        Path runDir = freshRunDir(plan);
        String image = importPlanImage(plan, runDir, HotplugGuestTest.BOOT_SIZE);
        try (SocketDir controlDir = SocketDir.create("vbc-")) {
            Path control = controlDir.resolve("ctl.sock");
            Problems problems = boot(plan, runDir, image, List.of("--id", "disk0", "--control", control.toString()),
                    (export, check) -> check.equals("resize")
                            ? HotplugGuestTest.resize(control, "disk0", HotplugGuestTest.GROWN_SIZE)
                            : "no host step named " + check);
            problems.addIfAny("rbd export after the guest: ", DiskImage.compare(export(image, runDir), plan.expectedImage(), plan));
            report(plan, problems, runDir);
        }
    }

    @Test
    void cryptAboveTheRbdDriver() throws Exception {
        GuestPlan plan = EncryptedGuestTest.ENCRYPTED_RW;
        Path runDir = freshRunDir(plan);
        Path luks = runDir.resolve("disk.luks");
        Path key = EncryptedGuestTest.keyFile(runDir);
        EncryptedGuestTest.formatZeroed(luks, LuksVersion.LUKS1, 512);
        // The image (header and payload) goes to the cluster; the module reads the header from a
        // detached copy, since an RBD image is no file it can open.
        String image = "crypt";
        importImage(luks, image);
        Path policy = CryptModule.writePolicy(runDir.resolve("policy.conf"), plan.name(), key, "set.header-file = " + luks);
        Problems problems = boot(plan, runDir, image, List.of("--policy", policy.toString()), (export, check) -> {
            GuestPlan.Region r = plan.flushedWrite(check);
            if (r == null) {
                return "no flushed write named " + check;
            }
            try (UnlockedVolume v = EncryptedGuestTest.unlock(export)) {
                return DiskImage.firstDifference(java.util.Arrays.copyOfRange(TestPattern.bytes(),
                        (int) r.patternOffset(), (int) (r.patternOffset() + r.length())),
                        EncryptedGuestTest.readPlaintext(v, r.diskOffset(), (int) r.length()));
            }
        });
        Path export = export(image, runDir);
        try (UnlockedVolume v = EncryptedGuestTest.unlock(export)) {
            problems.addIfAny("rbd export, decrypted, differs from what the guest wrote: ", DiskImage.firstDifference(
                    plan.expectedImage(), EncryptedGuestTest.readPlaintext(v, 0, (int) EncryptedGuestTest.DISK)));
        }
        byte[] sample = java.util.Arrays.copyOfRange(TestPattern.bytes(), 4096, 4096 + 64);
        byte[] raw = Files.readAllBytes(export);
        for (int i = 0; i + sample.length <= raw.length; i += 512) {
            if (java.util.Arrays.equals(raw, i, i + sample.length, sample, 0, sample.length)) {
                problems.add("plaintext of the guest's first write found in the RBD image at byte " + i);
                break;
            }
        }
        report(plan, problems, runDir);
    }

    /**
     * {@code dedup, compress} above the rbd driver: the volume is formatted in a file and imported, the module opens
     * it through the driver with its own requests (geometry from the setting {@code logical-size}: there is no file
     * to read it from), and after the guest {@code rbd export} checks clean and reads back what the guest wrote.
     */
    @Test
    void dedupAndCompressAboveTheRbdDriver() throws Exception {
        GuestPlan plan = ReduceGuestTest.PLAN;
        Path runDir = freshRunDir(plan);
        Problems problems = new Problems();
        Path plain = runDir.resolve("reduce.img");
        ReduceGuestTest.reduce(problems, "format", plain.toString(), "--logical-size", Long.toString(plan.diskSize()));
        String image = "reduce";
        importImage(plain, image);
        Path policy = ModuleJars.writePolicy(runDir, "policy", plan.name(), List.of("dedup", "compress"),
                java.util.Map.of("dedup", List.of("set.logical-size = " + plan.diskSize())));
        boot(plan, runDir, image, List.of("--policy", policy.toString()),
                (export, check) -> "unexpected SYNCED " + check).list().forEach(problems::add);
        Path export = export(image, runDir);
        String check = ReduceGuestTest.reduce(problems, "check", export.toString());
        problems.addIfAny("the volume in the rbd export differs from what the guest wrote: ",
                DiskImage.firstDifference(plan.expectedImage(), ReduceGuestTest.readVolume(export), plan));
        System.out.println("RbdGuestTest dedup, compress: " + check.strip().replace('\n', ' '));
        report(plan, problems, runDir);
    }

    /** A host-side check of the guest's FLUSHed write, given a fresh {@code rbd export} of the image. */
    private interface ExportCheck {
        String verify(Path export, String check) throws IOException;
    }

    /** Boots the plan against vhost-blk serving {@code rbd:rbd/IMAGE}; returns the problems found. */
    private static Problems boot(GuestPlan plan, Path runDir, String image, List<String> extra, ExportCheck flushed)
            throws Exception {
        Problems problems = new Problems();
        try (SocketDir sockets = SocketDir.create("vbr-")) {
            ExportSpec spec = new ExportSpec(runDir.resolve("unused"), plan.diskSize(), plan.queues(), false,
                    sockets.resolve("blk.sock"), runDir.resolve("backend.log"));
            List<String> args = new ArrayList<>(List.of("--socket", spec.socket().toString(), "--driver", "rbd",
                    "--disk", "rbd:" + CephCluster.POOL + "/" + image,
                    "--rbd-conf", cluster.conf().toString(), "--rbd-id", "admin", "--rbd-keyring", cluster.keyring().toString(),
                    "--queues", Integer.toString(plan.queues())));
            args.addAll(extra);
            // A policy's modules come from their jars.
            try (StorageBackend server = VhostBlkServer.serve("vhost-blk server (rbd)", spec,
                    ModuleJars.serverClassPath(CryptModule.serverClassPath(), List.of("dedup", "compress")), args)) {
                GuestRun run = HARNESS.boot(plan, spec.socket(), runDir, check -> {
                    try {
                        return flushed.verify(export(image, runDir), check);
                    } catch (IOException | InterruptedException e) {
                        return "cannot export " + image + ": " + e;
                    }
                });
                problems.stop(server);
                problems.guest("guest: ", run, plan);
                problems.hostVerdicts("rbd export after the guest's FLUSH of ", run);
                if (!Logs.tail(spec.log(), 400).contains("serving rbd rbd:" + CephCluster.POOL + "/" + image)) {
                    problems.add("the server log does not show the rbd driver serving the image");
                }
                if (!problems.isEmpty()) {
                    problems.add("serial tail:\n" + Problems.tails(run, 30, server));
                }
            }
        }
        return problems;
    }

    /** Imports the plan's initial image, {@code size} bytes of it, as {@code rbd/PLAN-NAME}; returns that name. */
    private static String importPlanImage(GuestPlan plan, Path runDir, long size) throws IOException, InterruptedException {
        Path local = runDir.resolve("disk.img");
        DiskImage.create(local, plan);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(local.toFile(), "rw")) {
            f.setLength(size);
        }
        importImage(local, plan.name());
        return plan.name();
    }

    /** {@code rbd import} of {@code file} as {@code rbd/IMAGE}. */
    private static void importImage(Path file, String image) throws IOException, InterruptedException {
        cluster.rbd("import", "--no-progress", "--image-feature", "layering", file.toString(), CephCluster.POOL + "/" + image);
    }

    private static Path export(String image, Path runDir) throws IOException, InterruptedException {
        Path file = runDir.resolve(image + ".export");
        Files.deleteIfExists(file);
        cluster.rbd("export", "--no-progress", CephCluster.POOL + "/" + image, file.toString());
        return file;
    }

    private static Path freshRunDir(GuestPlan plan) throws IOException {
        return GuestHarness.runDir(plan.name() + "-rbd");
    }

    private static void report(GuestPlan plan, Problems problems, Path runDir) {
        problems.failIfAny("plan '" + plan.name() + "' on an RBD image (" + runDir + ")", () -> "");
    }
}
