package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

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
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A guest started by libvirt from the domain XML that {@code vhost-blk xml} prints uses its
 * vhost-user disk. libvirt's embedded QEMU driver ({@code virt-qemu-run --root DIR}) runs the
 * domain with no daemon, so the test needs no libvirtd, systemd or system-wide configuration
 * beyond the {@code libvirt-qemu} user the driver insists on (bin/run-tests creates it).
 */
class LibvirtGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(240);
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long MIB = 1024 * 1024;
    private static final long DISK = 32 * MIB;

    static final GuestPlan PLAN = GuestPlan.writable("libvirt", DISK, 1, 1)
            .write("libvirt-4k", 4096, 0, 2 * MIB, 13)
            .write("libvirt-128k", 128 * 1024, 4 * MIB, 4 * MIB, 2 * MIB + 5)
            .read("libvirt-4k-read", 64 * 1024, 0, 2 * MIB, 13)
            .read("libvirt-128k-read", 4096, 4 * MIB, 4 * MIB, 2 * MIB + 5)
            .fsync("libvirt-fsync");

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    @BeforeAll
    static void prepareGuest() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        initramfs = Initramfs.build(TARGET.resolve("guest-libvirt"), kernel, List.of(PLAN));
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    @Test
    void aDomainFromVhostBlkXmlBootsAndUsesTheDisk() throws Exception {
        Path runner = HostTools.program("virt-qemu-run", "libvirt-daemon-driver-qemu");
        Path validator = HostTools.program("virt-xml-validate", "libvirt-clients");
        Process id = new ProcessBuilder("id", "libvirt-qemu").redirectErrorStream(true).start();
        if (id.waitFor() != 0) {
            fail("libvirt's QEMU driver refuses to start without a 'libvirt-qemu' user: create it "
                    + "(useradd --system libvirt-qemu; bin/run-tests does)");
        }
        Path runDir = TARGET.resolve("qemu-runs").resolve("libvirt");
        deleteRecursively(runDir);
        Files.createDirectories(runDir);
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, PLAN);
        Path sockets = Files.createTempDirectory(Path.of("/tmp"), "vbl-");
        Path console = runDir.resolve("console.log");
        ExportSpec spec = new ExportSpec(image, DISK, 1, false, sockets.resolve("vb.sock"), runDir.resolve("backend.log"));
        Path qemu = HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        String type = Accelerator.forGuests(qemu, kernel) == Accelerator.KVM ? "kvm" : "qemu";
        try (VhostBlkServer server = VhostBlkServer.start(spec)) {
            String xml = vhostBlkXml("--socket", spec.socket().toString(), "--domain", "vhost-blk-test", "--type", type,
                    "--memory", "512M", "--emulator", qemu.toString(), "--kernel", kernel.image().toString(),
                    "--initrd", initramfs.toString(), "--cmdline", "console=ttyS0 panic=-1 quiet vbtest=" + PLAN.name(),
                    "--reconnect", "0");
            // The console goes to a file the test reads (a user would keep the pty).
            xml = xml.replace("<serial type='pty'/>", "<serial type='file'><source path='" + console + "'/></serial>")
                    .replace("<console type='pty'/>", "");
            Path domain = Files.writeString(runDir.resolve("domain.xml"), xml);
            Process validate = new ProcessBuilder(validator.toString(), domain.toString(), "domain").redirectErrorStream(true).start();
            String validation = new String(validate.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, validate.waitFor(), "libvirt's schema refused the domain:\n" + validation);

            // libvirt puts the QEMU monitor socket under its root: a root below a long checkout path
            // makes that socket path longer than sun_path holds, so the root lives in the short /tmp dir.
            Path libvirtRoot = sockets.resolve("root");
            Path root = Files.createDirectories(libvirtRoot.resolve("etc"));
            Files.writeString(root.resolve("qemu.conf"), """
                    user = "root"
                    group = "root"
                    dynamic_ownership = 0
                    remember_owner = 0
                    stdio_handler = "file"
                    """);
            GuestRun run = runDomain(runner, libvirtRoot, domain, console, runDir.resolve("virt-qemu-run.log"));
            List<String> problems = new ArrayList<>(run.problems(PLAN.checks()));
            String imageProblem = DiskImage.compare(image, PLAN.expectedImage(), PLAN);
            if (imageProblem != null) {
                problems.add("image after the guest: " + imageProblem);
            }
            StorageBackend.Exit exit = server.stop();
            if (!exit.clean()) {
                problems.add("vhost-blk must exit 0 after SIGTERM, but it " + exit);
            }
            if (!problems.isEmpty()) {
                fail(problems.size() + " problem(s) with the libvirt-run guest\n  - " + String.join("\n  - ", problems) + "\n"
                        + run.serialTail(30) + "\n--- virt-qemu-run ---\n" + Files.readString(runDir.resolve("virt-qemu-run.log"))
                        + "\n--- vhost-blk ---\n" + server.logTail(30));
            }
        } finally {
            deleteRecursively(sockets);
        }
    }

    private static String vhostBlkXml(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> cmd = new ArrayList<>(List.of("xml"));
        cmd.addAll(List.of(args));
        int status = VhostBlkMain.run(cmd, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, status, "vhost-blk xml: " + err.toString(StandardCharsets.UTF_8));
        return out.toString(StandardCharsets.UTF_8);
    }

    /**
     * Runs the domain with libvirt's embedded driver until the guest reports the end of its plan
     * (or the timeout), then stops virt-qemu-run, which destroys the domain.
     */
    private static GuestRun runDomain(Path runner, Path root, Path domain, Path console, Path log) throws Exception {
        long start = System.nanoTime();
        Process p = new ProcessBuilder(runner.toString(), "--root", root.toString(), "--verbose", domain.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        long deadline = start + GUEST_TIMEOUT.toNanos();
        boolean done = false;
        boolean timedOut = false;
        try {
            while (!done) {
                if (Files.exists(console) && Files.readString(console, StandardCharsets.ISO_8859_1).contains("VBTEST DONE")) {
                    done = true;
                } else if (!p.isAlive()) {
                    break;
                } else if (System.nanoTime() > deadline) {
                    timedOut = true;
                    break;
                } else {
                    Thread.sleep(200);
                }
            }
        } finally {
            if (p.isAlive()) {
                p.destroy();
                if (!p.waitFor(30, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                }
            }
        }
        List<String> lines = Files.exists(console)
                ? Files.readAllLines(console, StandardCharsets.ISO_8859_1) : List.of();
        // The guest's own verdicts are on its console; libvirt's exit status reflects our stop, not the guest.
        return new GuestRun(lines, done ? 0 : p.exitValue(), timedOut, Duration.ofNanos(System.nanoTime() - start),
                Map.of(), console, log, List.of(runner.toString(), "--root", root.toString(), domain.toString()));
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
