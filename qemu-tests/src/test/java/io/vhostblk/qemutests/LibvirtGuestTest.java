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

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A guest started by libvirt from the domain XML that {@code vhost-blk xml} prints uses its
 * vhost-user disk, twice: once with libvirt's embedded QEMU driver ({@code virt-qemu-run}, no
 * daemon) and once defined and started with virsh through a libvirtd of the test's own. Neither
 * needs systemd or the host's libvirt configuration; both need the {@code libvirt-qemu} user the
 * QEMU driver insists on (bin/run-tests creates it).
 */
class LibvirtGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(240);
    private static final long MIB = 1024 * 1024;
    private static final long DISK = 32 * MIB;
    private static final String DOMAIN = "vhost-blk-test";

    static final GuestPlan PLAN = GuestPlan.writable("libvirt", DISK, 1, 1)
            .write("libvirt-4k", 4096, 0, 2 * MIB, 13)
            .write("libvirt-128k", 128 * 1024, 4 * MIB, 4 * MIB, 2 * MIB + 5)
            .read("libvirt-4k-read", 64 * 1024, 0, 2 * MIB, 13)
            .read("libvirt-128k-read", 4096, 4 * MIB, 4 * MIB, 2 * MIB + 5)
            .fsync("libvirt-fsync");

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-libvirt", GUEST_TIMEOUT, () -> List.of(PLAN));

    /** libvirt's embedded QEMU driver ({@code virt-qemu-run}): no daemon at all. */
    @Test
    void aDomainFromVhostBlkXmlBootsAndUsesTheDisk() throws Exception {
        Path runner = HostTools.program("virt-qemu-run", "libvirt-daemon-driver-qemu");
        runGuest("libvirt", (domain, console, sockets, runDir) -> {
            // libvirt puts the QEMU monitor socket under its root: a root below a long checkout path
            // makes that socket path longer than sun_path holds, so the root lives in the short /tmp dir.
            Path libvirtRoot = sockets.resolve("root");
            writeQemuConf(Files.createDirectories(libvirtRoot.resolve("etc")));
            Path log = runDir.resolve("virt-qemu-run.log");
            Process p = new ProcessBuilder(runner.toString(), "--root", libvirtRoot.toString(), "--verbose", domain.toString())
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                return awaitGuest(console, p::isAlive, log, List.of(runner.toString(), "--root", libvirtRoot.toString(),
                        domain.toString()));
            } finally {
                // Stopping virt-qemu-run destroys the domain.
                stop(p);
            }
        });
    }

    /**
     * The way most users run it: {@code virsh define} and {@code virsh start} against a libvirtd.
     * The daemon is the test's own: it runs in a private mount namespace whose /etc/libvirt,
     * /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt are directories of
     * the test, so it neither needs nor touches the host's libvirt configuration or a system
     * daemon, and virsh reaches it through its socket path. Stopped by its PID at the end.
     */
    @Test
    void aDomainDefinedAndStartedThroughLibvirtdUsesTheDisk() throws Exception {
        Path libvirtd = HostTools.program("libvirtd", "libvirt-daemon");
        Path virsh = HostTools.program("virsh", "libvirt-clients");
        Path unshare = HostTools.program("unshare", "util-linux");
        runGuest("libvirtd", (domain, console, sockets, runDir) -> {
            Path d = sockets.resolve("d");
            for (String sub : List.of("etc", "run", "lib", "log", "cache")) {
                Files.createDirectories(d.resolve(sub));
            }
            Path etc = Path.of("/etc/libvirt");
            if (Files.isDirectory(etc)) {
                try (var files = Files.list(etc)) {
                    for (Path f : files.filter(Files::isRegularFile).toList()) {
                        Files.copy(f, d.resolve("etc").resolve(f.getFileName()));
                    }
                }
            }
            writeQemuConf(d.resolve("etc"));
            // unshare and sh exec, so the PID ProcessBuilder reports is libvirtd's own.
            String script = "set -e\n"
                    + "for m in /etc/libvirt:etc /run/libvirt:run /var/lib/libvirt:lib /var/log/libvirt:log /var/cache/libvirt:cache; do\n"
                    + "  mkdir -p \"${m%%:*}\"; mount --bind \"" + d + "/${m#*:}\" \"${m%%:*}\"\n"
                    + "done\n"
                    + "exec " + libvirtd + " --pid-file " + d.resolve("libvirtd.pid") + "\n";
            Path daemonLog = runDir.resolve("libvirtd.log");
            Process daemon = new ProcessBuilder(unshare.toString(), "--mount", "--propagation", "private", "sh", "-c", script)
                    .redirectErrorStream(true).redirectOutput(daemonLog.toFile()).start();
            try {
                Path socket = d.resolve("run").resolve("libvirt-sock");
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (!Files.exists(socket)) {
                    if (!daemon.isAlive()) {
                        fail("libvirtd exited with status " + daemon.exitValue() + " before it listened (a private mount "
                                + "namespace needs root with CAP_SYS_ADMIN):\n" + Files.readString(daemonLog));
                    }
                    if (System.nanoTime() > deadline) {
                        fail("libvirtd did not create " + socket + " within 60 s:\n" + Files.readString(daemonLog));
                    }
                    Thread.sleep(100);
                }
                String uri = "qemu:///system?socket=" + socket;
                Path virshLog = runDir.resolve("virsh.log");
                virsh(virsh, uri, virshLog, 60, "define", domain.toString());
                // virsh start can hang for minutes when QEMU cannot reach the socket: bounded.
                virsh(virsh, uri, virshLog, 120, "start", DOMAIN);
                try {
                    return awaitGuest(console, daemon::isAlive, virshLog, List.of(virsh.toString(), "-c", uri, "start", DOMAIN));
                } finally {
                    // The guest powers itself off after its plan; destroy only what still runs.
                    if (!Files.readString(virshLog).contains("shut off")) {
                        virsh(virsh, uri, virshLog, 60, "domstate", DOMAIN);
                    }
                    if (Files.readString(virshLog).strip().endsWith("running")) {
                        virsh(virsh, uri, virshLog, 60, "destroy", DOMAIN);
                    }
                    virsh(virsh, uri, virshLog, 60, "undefine", DOMAIN);
                }
            } finally {
                stop(daemon);
            }
        });
    }

    /** Starts vhost-blk, writes and validates the domain XML, has {@code boot} run it, and checks the guest and the image. */
    private static void runGuest(String name, DomainBoot boot) throws Exception {
        Path validator = HostTools.program("virt-xml-validate", "libvirt-clients");
        Process id = new ProcessBuilder("id", "libvirt-qemu").redirectErrorStream(true).start();
        if (id.waitFor() != 0) {
            fail("libvirt's QEMU driver refuses to start without a 'libvirt-qemu' user: create it "
                    + "(useradd --system libvirt-qemu; bin/run-tests does)");
        }
        Path runDir = GuestHarness.runDir(name);
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, PLAN);
        SocketDir socketDir = SocketDir.create("vbl-");
        Path sockets = socketDir.path();
        Path console = runDir.resolve("console.log");
        ExportSpec spec = new ExportSpec(image, DISK, 1, false, sockets.resolve("vb.sock"), runDir.resolve("backend.log"));
        Path qemu = HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        String type = Accelerator.forGuests(qemu, HARNESS.kernel()) == Accelerator.KVM ? "kvm" : "qemu";
        try (VhostBlkServer server = VhostBlkServer.start(spec)) {
            String xml = vhostBlkXml("--socket", spec.socket().toString(), "--domain", DOMAIN, "--type", type,
                    "--memory", "512M", "--emulator", qemu.toString(), "--kernel", HARNESS.kernel().image().toString(),
                    "--initrd", HARNESS.initramfs().toString(), "--cmdline", "console=ttyS0 panic=-1 quiet vbtest=" + PLAN.name(),
                    "--reconnect", "0");
            // The console goes to a file the test reads (a user would keep the pty).
            xml = xml.replace("<serial type='pty'/>", "<serial type='file'><source path='" + console + "'/></serial>")
                    .replace("<console type='pty'/>", "");
            Path domain = Files.writeString(runDir.resolve("domain.xml"), xml);
            Process validate = new ProcessBuilder(validator.toString(), domain.toString(), "domain").redirectErrorStream(true).start();
            String validation = new String(validate.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(0, validate.waitFor(), "libvirt's schema refused the domain:\n" + validation);

            GuestRun run = boot.run(domain, console, sockets, runDir);
            Problems problems = new Problems();
            problems.guest("", run, PLAN);
            problems.addIfAny("image after the guest: ", DiskImage.compare(image, PLAN.expectedImage(), PLAN));
            problems.stop(server);
            problems.failIfAny("the " + name + " guest", () -> Problems.tails(run, 30, server));
        } finally {
            socketDir.close();
        }
    }

    /** How a test has libvirt run the domain: returns once the guest finished its plan or timed out. */
    @FunctionalInterface
    private interface DomainBoot {
        GuestRun run(Path domain, Path console, Path sockets, Path runDir) throws Exception;
    }

    private static void writeQemuConf(Path etc) throws IOException {
        Files.writeString(etc.resolve("qemu.conf"), """
                user = "root"
                group = "root"
                dynamic_ownership = 0
                remember_owner = 0
                stdio_handler = "file"
                """);
    }

    /** Runs one virsh command, bounded in time; its output is appended to {@code log}. */
    private static void virsh(Path virsh, String uri, Path log, int seconds, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(virsh.toString(), "-c", uri));
        cmd.addAll(List.of(args));
        Files.writeString(log, "$ " + String.join(" ", cmd) + "\n", java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            stop(p);
            fail("virsh " + String.join(" ", args) + " did not finish within " + seconds + " s:\n" + Files.readString(log));
        }
        if (p.exitValue() != 0) {
            fail("virsh " + String.join(" ", args) + " failed with status " + p.exitValue() + ":\n" + Files.readString(log));
        }
    }

    private static void stop(Process p) throws InterruptedException {
        if (p.isAlive()) {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
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

    /** Waits until the guest reports the end of its plan on its console, the runner dies, or the timeout. */
    private static GuestRun awaitGuest(Path console, java.util.function.BooleanSupplier runnerAlive, Path log,
                                       List<String> command) throws Exception {
        long start = System.nanoTime();
        long deadline = start + GUEST_TIMEOUT.toNanos();
        boolean done = false;
        boolean timedOut = false;
        while (!done) {
            if (Files.exists(console) && Files.readString(console, StandardCharsets.ISO_8859_1).contains("VBTEST DONE")) {
                done = true;
            } else if (!runnerAlive.getAsBoolean()) {
                break;
            } else if (System.nanoTime() > deadline) {
                timedOut = true;
                break;
            } else {
                Thread.sleep(200);
            }
        }
        List<String> lines = Files.exists(console)
                ? Files.readAllLines(console, StandardCharsets.ISO_8859_1) : List.of();
        // The guest's own verdicts are on its console; the runner's exit reflects our stop, not the guest.
        return new GuestRun(lines, done ? 0 : -1, timedOut, Duration.ofNanos(System.nanoTime() - start),
                Map.of(), console, log, command);
    }
}
