package io.vhostblk.qemutests;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * Boots one Linux guest under QEMU whose only disk is a vhost-user-blk device on a given socket, and
 * records its serial console until it powers off or the hard timeout kills it.
 */
final class QemuGuest {
    /** Called when the guest prints {@code VBTEST SYNCED <check>}; returns null if the host-side check holds, else why not. */
    @FunctionalInterface
    interface SyncedCheck {
        String verify(String check);
    }

    /** For a plan without host steps: any {@code SYNCED} the guest announces is a problem. */
    static final SyncedCheck NO_HOST_STEPS = check -> "unexpected SYNCED " + check;

    /**
     * What to boot: the guest's memory must be shared (memfd) so the back-end can map it.
     *
     * @param ring the virtqueue layout QEMU offers the guest ({@code packed=on} or not)
     */
    record Config(GuestKernel kernel, Path initramfs, GuestPlan plan, Path socket, Path runDir, Duration timeout,
                  Ring ring) {
    }

    /** The virtqueue layout of the guest's vhost-user-blk device. */
    enum Ring {
        SPLIT(""),
        /** VIRTIO_F_RING_PACKED offered to the guest; used only if the back-end offers it too. */
        PACKED(",packed=on");

        final String deviceOption;

        Ring(String deviceOption) {
            this.deviceOption = deviceOption;
        }
    }

    private static final String MEMORY = "512M";

    private QemuGuest() {
    }

    /** Boots the guest and waits for it to power off (or kills it at the timeout); never leaves QEMU running. */
    static GuestRun run(Config config, SyncedCheck syncedCheck) throws IOException, InterruptedException {
        return run(config, syncedCheck, "");
    }

    /**
     * As {@link #run(Config, SyncedCheck)}, with {@code chardevOptions} appended to the vhost-user
     * socket's chardev (",reconnect=1" keeps the guest across back-end restarts).
     */
    static GuestRun run(Config config, SyncedCheck syncedCheck, String chardevOptions)
            throws IOException, InterruptedException {
        return run(config, syncedCheck, chardevOptions, c -> c, p -> { });
    }

    /**
     * As {@link #run(Config, SyncedCheck, String)}, with QEMU's command line changed by
     * {@code adjust} (extra monitor or memory options) and {@code started} told of QEMU's process.
     */
    static GuestRun run(Config config, SyncedCheck syncedCheck, String chardevOptions,
                        UnaryOperator<List<String>> adjust, Consumer<Process> started)
            throws IOException, InterruptedException {
        Path qemu = HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        Path serialLog = config.runDir().resolve("serial.log");
        Path stderrLog = config.runDir().resolve("qemu.log");
        List<String> command = adjust.apply(command(qemu, config, chardevOptions));
        Files.writeString(config.runDir().resolve("qemu.cmdline"), String.join(" ", command) + "\n");

        List<String> serial = Collections.synchronizedList(new ArrayList<>());
        Map<String, String> hostVerdicts = Collections.synchronizedMap(new LinkedHashMap<>());
        long start = System.nanoTime();
        Process process = new ProcessBuilder(command)
                .redirectError(stderrLog.toFile())
                .start();
        started.accept(process);
        Thread console = console(process, serialLog, serial, check -> {
            String verdict;
            try {
                verdict = syncedCheck.verify(check);
            } catch (RuntimeException | Error e) {
                verdict = "host check threw " + e;
            }
            hostVerdicts.put(check, verdict == null ? "" : verdict);
            return true;
        });
        boolean exited;
        try {
            exited = process.waitFor(config.timeout().toMillis(), TimeUnit.MILLISECONDS);
        } finally {
            if (process.isAlive()) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
            console.join(TimeUnit.SECONDS.toMillis(10));
        }
        Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
        return new GuestRun(List.copyOf(serial), exited ? process.exitValue() : -1, !exited, elapsed,
                Map.copyOf(hostVerdicts), serialLog, stderrLog, command);
    }

    /** QEMU's command line for {@code c} (mutable, so a caller may append options such as -incoming). */
    static List<String> command(Path qemu, Config c, String chardevOptions) {
        GuestPlan plan = c.plan();
        Accelerator accel = Accelerator.forGuests(qemu, c.kernel());
        List<String> cmd = new ArrayList<>(List.of(qemu.toString(),
                "-nodefaults", "-no-reboot", "-display", "none", "-no-user-config",
                "-accel", accel.accel,
                "-cpu", accel.cpu,
                "-M", "q35,memory-backend=mem",
                // vhost-user: the back-end maps guest RAM through the fds QEMU sends, so RAM must be a shared memfd.
                "-object", "memory-backend-memfd,id=mem,size=" + MEMORY + ",share=on",
                "-m", MEMORY,
                "-smp", Integer.toString(plan.vcpus()),
                "-kernel", c.kernel().image().toString(),
                "-initrd", c.initramfs().toString(),
                "-append", "console=ttyS0 panic=-1 quiet vbtest=" + plan.name(),
                // The serial console on stdio: we read the guest's reports and answer its SYNCED requests.
                "-chardev", "stdio,id=console,signal=off",
                "-serial", "chardev:console",
                "-chardev", "socket,id=vb0,path=" + c.socket() + chardevOptions,
                "-device", "vhost-user-blk-pci,chardev=vb0,num-queues=" + plan.queues() + c.ring().deviceOption));
        return cmd;
    }

    /** Handles the guest's {@code VBTEST SYNCED <check>}; returns whether this console's QEMU gets the ack. */
    @FunctionalInterface
    interface SyncedHandler {
        boolean handle(String check);
    }

    /**
     * Starts a thread that records {@code process}'s serial console into {@code serial} and {@code log}
     * until QEMU goes away, handing each {@code SYNCED} request to {@code handler}.
     */
    static Thread console(Process process, Path log, List<String> serial, SyncedHandler handler) {
        return Thread.ofPlatform().name("serial-" + log.getFileName()).daemon().start(() -> {
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.ISO_8859_1));
                 Writer out = Files.newBufferedWriter(log, StandardCharsets.ISO_8859_1)) {
                String line;
                while ((line = in.readLine()) != null) {
                    serial.add(line);
                    out.write(line);
                    out.write('\n');
                    out.flush();
                    int at = line.indexOf("VBTEST SYNCED ");
                    if (at >= 0 && handler.handle(line.substring(at + "VBTEST SYNCED ".length()).strip())) {
                        ack(process);
                    }
                }
            } catch (IOException e) {
                // QEMU went away (killed at the timeout or exited); what was read so far is the record.
                serial.add("[harness] console of " + log.getFileName() + " ended: " + e);
            }
        });
    }

    /** Answers the guest's pending {@code SYNCED} on {@code process}'s console. */
    static void ack(Process process) {
        try {
            OutputStream in = process.getOutputStream();
            in.write("ack\n".getBytes(StandardCharsets.US_ASCII));
            in.flush();
        } catch (IOException e) {
            // The guest never gets its answer; it reports the missing reply itself.
        }
    }
}
