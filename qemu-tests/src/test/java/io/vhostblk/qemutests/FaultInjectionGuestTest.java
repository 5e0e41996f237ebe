package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.server.Json;
import io.vhostblk.server.VhostBlkMain;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A real guest against {@code vhost-blk serve --inject}: I/O touching the injected EIO range fails
 * in the guest with an I/O error, exactly there; everything around it, and everything after the
 * errors, works; the image holds exactly what succeeded; the server exits cleanly.
 */
class FaultInjectionGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(180);
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long EIO_START = 16 * MIB;
    private static final long EIO_END = EIO_START + 64 * KIB;
    private static final GuestPlan PLAN = plan();

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    private static GuestPlan plan() {
        GuestPlan p = GuestPlan.writable("faulty-eio", 64 * MIB, 1, 1);
        p.write("before-range", 4096, EIO_START - 64 * KIB, 64 * KIB, 0)
                .ioFails("write-first-block", "write", EIO_START, 4096)
                .ioFails("write-last-sector", "write", EIO_END - 512, 512)
                .ioFails("read-straddling-start", "read", EIO_START - 4096, 8192)
                .ioFails("read-straddling-end", "read", EIO_END - 512, 1024)
                .write("after-range", 512, EIO_END, 64 * KIB, 64 * KIB)
                .read("before-range-read", 512, EIO_START - 64 * KIB, 64 * KIB, 0)
                .read("after-range-read", 4096, EIO_END, 64 * KIB, 64 * KIB)
                // The device and its queue keep serving after the errors.
                .write("after-errors", (int) (64 * KIB), 32 * MIB, 2 * MIB, MIB)
                .read("after-errors-read", (int) MIB, 32 * MIB, 2 * MIB, MIB);
        return p.fsync("final-fsync");
    }

    @BeforeAll
    static void prepareGuest() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        // Its own cache directory: Initramfs.build deletes other archives in the one it is given.
        initramfs = Initramfs.build(TARGET.resolve("guest-faults"), kernel, List.of(PLAN));
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    @Test
    void eioRangeFailsExactlyThereAndEverythingElseWorks() throws Exception {
        Path runDir = TARGET.resolve("qemu-runs").resolve(PLAN.name() + "-vhost_blk");
        TestDirs.deleteRecursively(runDir);
        Files.createDirectories(runDir);
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, PLAN);
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbf-");
        try {
            ExportSpec spec = new ExportSpec(image, PLAN.diskSize(), 1, false, socketDir.resolve("blk.sock"),
                    runDir.resolve("backend.log"), List.of("--inject", "eio=" + EIO_START + "-" + EIO_END,
                    "--control", socketDir.resolve("ctl.sock").toString()));
            try (StorageBackend server = VhostBlkServer.start(spec)) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, PLAN, spec.socket(), runDir, GUEST_TIMEOUT),
                        check -> "unexpected SYNCED " + check);
                List<String> problems = new ArrayList<>();
                injectedFaults(socketDir.resolve("ctl.sock"), problems);
                StorageBackend.Exit exit = server.stop();
                run.problems(PLAN.checks()).forEach(p -> problems.add("guest: " + p));
                String imageProblem = DiskImage.compare(image, PLAN.expectedImage(), PLAN);
                if (imageProblem != null) {
                    problems.add("image file (the failed writes must not have reached it): " + imageProblem);
                }
                if (!exit.clean()) {
                    problems.add("vhost-blk must exit with status 0 within " + ProcessBackend.STOP_TIMEOUT.toSeconds()
                            + " s of SIGTERM, but it " + exit);
                }
                String log = Logs.tail(spec.log(), 400);
                if (!log.contains("EIO injected")) {
                    problems.add("the server log does not name the injected EIO");
                }
                if (!problems.isEmpty()) {
                    fail(problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems) + "\n" + run.serialTail(40)
                            + "\n--- vhost-blk log (" + spec.log() + ") ---\n" + server.logTail(40));
                }
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
    }

    /**
     * {@code vhost-blk ctl devices} reports what was injected: at least one EIO per failed guest operation
     * (four; the guest kernel may split one into several requests), and no other kind of fault.
     */
    private static void injectedFaults(Path control, List<String> problems) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = VhostBlkMain.run(List.of("ctl", "--control", control.toString(), "devices"),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        if (status != 0) {
            problems.add("vhost-blk ctl devices exited " + status + ": " + err.toString(StandardCharsets.UTF_8));
            return;
        }
        Map<?, ?> device = (Map<?, ?>) ((List<?>) ((Map<?, ?>) Json.parse(out.toString(StandardCharsets.UTF_8)))
                .get("devices")).getFirst();
        if (!(device.get("injectedFaults") instanceof Map<?, ?> faults)) {
            problems.add("ctl devices shows no injectedFaults: " + device);
            return;
        }
        if (!(faults.get("eio") instanceof Long eio) || eio < 4) {
            problems.add("ctl devices counts " + faults.get("eio") + " injected EIOs, fewer than the 4 failed guest operations");
        }
        for (Map.Entry<?, ?> e : faults.entrySet()) {
            if (!e.getKey().equals("eio") && !Long.valueOf(0).equals(e.getValue())) {
                problems.add("ctl devices counts " + e.getKey() + "=" + e.getValue() + " though only EIO was injected");
            }
        }
    }
}
