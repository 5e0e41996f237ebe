package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vhostblk.hooks.Sha256;
import io.vhostblk.modules.crypt.FormatOptions;
import io.vhostblk.modules.crypt.KdfOptions;
import io.vhostblk.modules.crypt.LuksVersion;
import io.vhostblk.modules.crypt.LuksVolume;
import io.vhostblk.modules.crypt.Secret;
import io.vhostblk.modules.crypt.UnlockedVolume;
import io.vhostblk.testsupport.CephCluster;
import io.vhostblk.testsupport.ServerJvm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Real guests whose disk is a Ceph RBD image served by vhost-blk's rbd driver, on a single-node
 * cluster started for this class: direct I/O of every size, FLUSH, DISCARD and WRITE_ZEROES on one
 * queue, parallel writers on two queues, and the crypt module above the driver. After each guest
 * the image is read back with {@code rbd export} and compared with what the guest wrote; the guest's
 * FLUSHed write is checked with {@code rbd export} while the guest waits.
 */
class RbdGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(240);
    private static final Path TARGET = Path.of("target").toAbsolutePath();

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;
    private static CephCluster cluster;

    @BeforeAll
    static void prepare() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        initramfs = Initramfs.build(TARGET.resolve("guest-rbd"), kernel,
                List.of(GuestPlans.READ_WRITE, GuestPlans.MULTI_QUEUE, EncryptedGuestTest.ENCRYPTED_RW,
                        HotplugGuestTest.RESIZE, ReduceGuestTest.PLAN));
        cluster = CephCluster.start(TARGET);
    }

    @AfterAll
    static void release() throws IOException {
        if (cluster != null) {
            cluster.close();
        }
        if (runLock != null) {
            runLock.close();
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
        Path local = runDir.resolve("disk.img");
        DiskImage.create(local, plan);
        String image = plan.name();
        cluster.rbd("import", "--no-progress", "--image-feature", "layering", local.toString(), CephCluster.POOL + "/" + image);
        List<String> problems = boot(plan, runDir, image, List.of(), (export, check) -> {
            GuestPlan.Region r = plan.flushedWrite(check);
            return r == null ? "no flushed write named " + check : DiskImage.compareRange(export, r);
        });
        Path export = export(image, runDir);
        String diff = DiskImage.compare(export, plan.expectedImage(), plan);
        if (diff != null) {
            problems.add("rbd export after the guest: " + diff);
        }
        report(plan, problems, runDir);
    }

    /** {@code ctl resize} under a running guest: rbd_resize, the guest sees and uses the new end, rbd export agrees. */
    @Test
    void liveResizeOfAnRbdImage() throws Exception {
        GuestPlan plan = HotplugGuestTest.RESIZE;
        Path runDir = freshRunDir(plan);
        Path local = runDir.resolve("disk.img");
        DiskImage.create(local, plan);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(local.toFile(), "rw")) {
            f.setLength(HotplugGuestTest.BOOT_SIZE);
        }
        String image = plan.name();
        cluster.rbd("import", "--no-progress", "--image-feature", "layering", local.toString(), CephCluster.POOL + "/" + image);
        Path controlDir = Files.createTempDirectory(Path.of("/tmp"), "vbc-");
        Path control = controlDir.resolve("ctl.sock");
        try {
            List<String> problems = boot(plan, runDir, image, List.of("--id", "disk0", "--control", control.toString()),
                    (export, check) -> check.equals("resize")
                            ? HotplugGuestTest.resize(control, "disk0", HotplugGuestTest.GROWN_SIZE)
                            : "no host step named " + check);
            String diff = DiskImage.compare(export(image, runDir), plan.expectedImage(), plan);
            if (diff != null) {
                problems.add("rbd export after the guest: " + diff);
            }
            report(plan, problems, runDir);
        } finally {
            Files.deleteIfExists(control);
            Files.deleteIfExists(controlDir);
        }
    }

    @Test
    void cryptAboveTheRbdDriver() throws Exception {
        GuestPlan plan = EncryptedGuestTest.ENCRYPTED_RW;
        Path runDir = freshRunDir(plan);
        Path luks = runDir.resolve("disk.luks");
        Path key = EncryptedGuestTest.keyFile(runDir);
        try (Secret s = Secret.copyOf(EncryptedGuestTest.PASSPHRASE)) {
            LuksVolume.format(luks, s, new FormatOptions(LuksVersion.LUKS1, 512, EncryptedGuestTest.DISK, KdfOptions.pbkdf2(1000)));
        }
        try (UnlockedVolume v = EncryptedGuestTest.unlock(luks)) {
            EncryptedGuestTest.writePlaintext(v, 0, new byte[(int) EncryptedGuestTest.DISK]);
        }
        // The image (header and payload) goes to the cluster; the module reads the header from a
        // detached copy, since an RBD image is no file it can open.
        String image = "crypt";
        cluster.rbd("import", "--no-progress", "--image-feature", "layering", luks.toString(), CephCluster.POOL + "/" + image);
        Path jar = CryptModule.jar();
        Path policy = Files.writeString(runDir.resolve("policy.conf"), String.join("\n",
                "vm = " + plan.name(),
                "module-dir = " + jar.getParent(),
                "chain = crypt",
                "[module crypt]",
                "jar = " + jar.getFileName(),
                "sha256 = " + Sha256.of(Files.readAllBytes(jar)),
                "set.key-file = " + key,
                "set.header-file = " + luks,
                ""));
        List<String> problems = boot(plan, runDir, image, List.of("--policy", policy.toString()), (export, check) -> {
            GuestPlan.Region r = plan.flushedWrite(check);
            if (r == null) {
                return "no flushed write named " + check;
            }
            try (UnlockedVolume v = EncryptedGuestTest.unlock(export)) {
                return EncryptedGuestTest.firstDifference(java.util.Arrays.copyOfRange(TestPattern.bytes(),
                        (int) r.patternOffset(), (int) (r.patternOffset() + r.length())),
                        EncryptedGuestTest.readPlaintext(v, r.diskOffset(), (int) r.length()));
            }
        });
        Path export = export(image, runDir);
        try (UnlockedVolume v = EncryptedGuestTest.unlock(export)) {
            String diff = EncryptedGuestTest.firstDifference(plan.expectedImage(),
                    EncryptedGuestTest.readPlaintext(v, 0, (int) EncryptedGuestTest.DISK));
            if (diff != null) {
                problems.add("rbd export, decrypted, differs from what the guest wrote: " + diff);
            }
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
        List<String> problems = new ArrayList<>();
        Path plain = runDir.resolve("reduce.img");
        ReduceGuestTest.reduce(problems, "format", plain.toString(), "--logical-size", Long.toString(plan.diskSize()));
        String image = "reduce";
        cluster.rbd("import", "--no-progress", "--image-feature", "layering", plain.toString(), CephCluster.POOL + "/" + image);
        Path policy = ModuleJars.writePolicy(runDir, "policy", plan.name(), List.of("dedup", "compress"),
                java.util.Map.of("dedup", List.of("set.logical-size = " + plan.diskSize())));
        problems.addAll(boot(plan, runDir, image, List.of("--policy", policy.toString()),
                (export, check) -> "unexpected SYNCED " + check));
        Path export = export(image, runDir);
        String check = ReduceGuestTest.reduce(problems, "check", export.toString());
        String diff = ReduceGuestTest.firstDifference(plan.expectedImage(), ReduceGuestTest.readVolume(export));
        if (diff != null) {
            problems.add("the volume in the rbd export differs from what the guest wrote: " + diff);
        }
        System.out.println("RbdGuestTest dedup, compress: " + check.strip().replace('\n', ' '));
        report(plan, problems, runDir);
    }

    /** A host-side check of the guest's FLUSHed write, given a fresh {@code rbd export} of the image. */
    private interface ExportCheck {
        String verify(Path export, String check) throws IOException;
    }

    /** Boots the plan against vhost-blk serving {@code rbd:rbd/IMAGE}; returns the problems found. */
    private static List<String> boot(GuestPlan plan, Path runDir, String image, List<String> extra, ExportCheck flushed)
            throws Exception {
        List<String> problems = new ArrayList<>();
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbr-");
        try {
            ExportSpec spec = new ExportSpec(runDir.resolve("unused"), plan.diskSize(), plan.queues(), false,
                    socketDir.resolve("blk.sock"), runDir.resolve("backend.log"));
            List<String> command = new ArrayList<>(List.of(ModuleJars.java(), ServerJvm.OPTIONS,
                    "-cp", ModuleJars.serverClassPath(CryptModule.serverClassPath(), List.of("dedup", "compress")), VhostBlkServer.MAIN_CLASS, "serve",
                    "--socket", spec.socket().toString(), "--driver", "rbd", "--disk", "rbd:" + CephCluster.POOL + "/" + image,
                    "--rbd-conf", cluster.conf().toString(), "--rbd-id", "admin", "--rbd-keyring", cluster.keyring().toString(),
                    "--queues", Integer.toString(plan.queues())));
            command.addAll(extra);
            try (RbdServer server = new RbdServer(spec, command)) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, plan, spec.socket(), runDir, GUEST_TIMEOUT),
                        check -> {
                            try {
                                return flushed.verify(export(image, runDir), check);
                            } catch (IOException | InterruptedException e) {
                                return "cannot export " + image + ": " + e;
                            }
                        });
                StorageBackend.Exit exit = server.stop();
                run.problems(plan.checks()).forEach(p -> problems.add("guest: " + p));
                run.hostProblems().forEach(p -> problems.add("rbd export after the guest's FLUSH of " + p));
                if (!exit.clean()) {
                    problems.add("vhost-blk must exit with status 0 within " + ProcessBackend.STOP_TIMEOUT.toSeconds()
                            + " s of SIGTERM, but it " + exit);
                }
                if (!Logs.tail(spec.log(), 400).contains("serving rbd rbd:" + CephCluster.POOL + "/" + image)) {
                    problems.add("the server log does not show the rbd driver serving the image");
                }
                if (!problems.isEmpty()) {
                    problems.add("serial tail:\n" + run.serialTail(30) + "\n--- vhost-blk log (" + spec.log() + ") ---\n"
                            + server.logTail(40));
                }
            }
        } finally {
            Files.deleteIfExists(socketDir.resolve("blk.sock"));
            Files.deleteIfExists(socketDir);
        }
        return problems;
    }

    /** vhost-blk serve with the rbd driver (and, for crypt, a policy; the module comes from its jar). */
    private static final class RbdServer extends ProcessBackend {
        RbdServer(ExportSpec spec, List<String> command) {
            super("vhost-blk server (rbd)", spec, command);
        }
    }

    private static Path export(String image, Path runDir) throws IOException, InterruptedException {
        Path file = runDir.resolve(image + ".export");
        Files.deleteIfExists(file);
        cluster.rbd("export", "--no-progress", CephCluster.POOL + "/" + image, file.toString());
        return file;
    }

    private static Path freshRunDir(GuestPlan plan) throws IOException {
        Path runDir = TARGET.resolve("qemu-runs").resolve(plan.name() + "-rbd");
        if (Files.exists(runDir)) {
            try (var paths = Files.walk(runDir)) {
                for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        return Files.createDirectories(runDir);
    }

    private static void report(GuestPlan plan, List<String> problems, Path runDir) {
        assertTrue(problems.isEmpty(), "plan '" + plan.name() + "' on an RBD image (" + runDir + "): "
                + problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems));
    }
}
