package io.vhostblk.qemutests;

import io.vhostblk.server.Json;
import io.vhostblk.server.VhostBlkMain;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A real guest against {@code vhost-blk serve --inject}: I/O touching the injected EIO range fails
 * in the guest with an I/O error, exactly there; everything around it, and everything after the
 * errors, works; the image holds exactly what succeeded; the server exits cleanly.
 */
class FaultInjectionGuestTest {
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long EIO_START = 16 * MIB;
    private static final long EIO_END = EIO_START + 64 * KIB;
    private static final GuestPlan PLAN = plan();

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-faults", Duration.ofSeconds(180), () -> List.of(PLAN));

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

    @Test
    void eioRangeFailsExactlyThereAndEverythingElseWorks() throws Exception {
        Path runDir = GuestHarness.runDir(PLAN.name() + "-vhost_blk");
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, PLAN);
        try (SocketDir sockets = SocketDir.create("vbf-")) {
            ExportSpec spec = new ExportSpec(image, PLAN.diskSize(), 1, false, sockets.resolve("blk.sock"),
                    runDir.resolve("backend.log"), List.of("--inject", "eio=" + EIO_START + "-" + EIO_END,
                    "--control", sockets.resolve("ctl.sock").toString()));
            try (StorageBackend server = VhostBlkServer.start(spec)) {
                GuestRun run = HARNESS.boot(PLAN, spec.socket(), runDir, QemuGuest.NO_HOST_STEPS);
                Problems problems = new Problems();
                injectedFaults(sockets.resolve("ctl.sock"), problems);
                problems.stop(server);
                problems.guest("guest: ", run, PLAN);
                problems.addIfAny("image file (the failed writes must not have reached it): ",
                        DiskImage.compare(image, PLAN.expectedImage(), PLAN));
                if (!Logs.tail(spec.log(), 400).contains("EIO injected")) {
                    problems.add("the server log does not name the injected EIO");
                }
                problems.failIfAny("EIO injection", () -> Problems.tails(run, 40, server));
            }
        }
    }

    /**
     * {@code vhost-blk ctl devices} reports what was injected: at least one EIO per failed guest operation
     * (four; the guest kernel may split one into several requests), and no other kind of fault.
     */
    private static void injectedFaults(Path control, Problems problems) throws Exception {
        Cli.Output ctl = Cli.run(VhostBlkMain::run, List.of("ctl", "--control", control.toString(), "devices"));
        if (ctl.status() != 0) {
            problems.add("vhost-blk ctl devices exited " + ctl.status() + ": " + ctl.err());
            return;
        }
        Map<?, ?> device = (Map<?, ?>) ((List<?>) ((Map<?, ?>) Json.parse(ctl.out()))
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
