package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The QEMU accelerator the guest tests use: KVM when a probe boot under KVM works, else TCG.
 *
 * <p>A readable {@code /dev/kvm} is not enough: under nested virtualization QEMU can abort while
 * setting up the vCPU ("failed to set MSR 0x10a"). The probe boots the guest kernel with no root
 * file system under {@code -accel kvm}; the kernel panics, {@code panic=-1} reboots and
 * {@code -no-reboot} makes QEMU exit 0. Anything else (abort, error, no exit in time) means TCG.
 * The choice is made once per JVM and logged, so every run says which path ran.
 */
enum Accelerator {
    KVM("kvm", "host"),
    TCG("tcg", "max");

    private static final System.Logger LOG = System.getLogger(Accelerator.class.getName());
    private static final long PROBE_SECONDS = 60;

    final String accel;
    final String cpu;

    Accelerator(String accel, String cpu) {
        this.accel = accel;
        this.cpu = cpu;
    }

    private static volatile Accelerator chosen;
    private static volatile String reason;

    /** The accelerator for this run (probed on first use). */
    static Accelerator forGuests(Path qemu, GuestKernel kernel) {
        Accelerator a = chosen;
        if (a == null) {
            synchronized (Accelerator.class) {
                if (chosen == null) {
                    chosen = probe(qemu, kernel);
                    String line = "guest tests run under " + chosen.accel + ": " + reason;
                    LOG.log(System.Logger.Level.INFO, line);
                    System.err.println("[qemu-tests] " + line);
                }
                a = chosen;
            }
        }
        return a;
    }

    /** Why the accelerator was chosen (for logs and reports). */
    static String reason() {
        return reason;
    }

    private static Accelerator probe(Path qemu, GuestKernel kernel) {
        Path kvm = Path.of("/dev/kvm");
        if ("tcg".equals(System.getenv("VHOST_BLK_ACCEL"))) {
            reason = "VHOST_BLK_ACCEL=tcg";
            return TCG;
        }
        if (!Files.isReadable(kvm) || !Files.isWritable(kvm)) {
            reason = "/dev/kvm is absent or not read-writable";
            return TCG;
        }
        List<String> command = List.of(qemu.toString(), "-nodefaults", "-no-reboot", "-display", "none",
                "-no-user-config", "-accel", "kvm", "-cpu", "host", "-M", "q35", "-m", "128M",
                "-kernel", kernel.image().toString(), "-append", "console=ttyS0 panic=-1 quiet",
                "-serial", "null");
        try {
            Path log = Files.createTempFile("vhost-blk-kvm-probe", ".log");
            try {
                Process p = new ProcessBuilder(command).redirectErrorStream(true)
                        .redirectOutput(log.toFile()).start();
                if (!p.waitFor(PROBE_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                    reason = "a KVM probe boot did not finish in " + PROBE_SECONDS + " s";
                    return TCG;
                }
                String out = Files.readString(log).strip();
                if (p.exitValue() != 0) {
                    reason = "a KVM probe boot failed (exit " + p.exitValue() + "): "
                            + (out.length() > 300 ? out.substring(0, 300) : out);
                    return TCG;
                }
                reason = "a KVM probe boot succeeded";
                return KVM;
            } finally {
                Files.deleteIfExists(log);
            }
        } catch (IOException e) {
            reason = "the KVM probe could not run: " + e.getMessage();
            return TCG;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            reason = "the KVM probe was interrupted";
            return TCG;
        }
    }
}
