package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Live migration of a guest under write load between two QEMUs on this machine, each with its own
 * vhost-blk server on the same image: the destination waits with {@code -incoming}; while four
 * guest writers rewrite their blocks generation after generation and two readers check prefilled
 * data (so the device writes read buffers), the host migrates the source over QMP. The back-ends log the guest pages they write (dirty log) and drain their queues when
 * stopped; after the migration the guest, now on the destination, checks every block holds its
 * writer's last generation, writes a final generation and reads it back; the host checks the image.
 */
class MigrationGuestTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(600);
    private static final int BLOCKS = 256;
    private static final int FINAL_GENERATION = 1000;
    /** Where the readers check data the host wrote before boot: device writes into guest read buffers. */
    private static final long READ_AT = 4L << 20;
    private static final GuestPlan PLAN = GuestPlan.writable("migrate", 8L << 20, 1, 1)
            .prefill(READ_AT, 1 << 20, 0)
            .migrationWrites("migration", BLOCKS, FINAL_GENERATION, READ_AT);

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-migrate", TIMEOUT, () -> List.of(PLAN));

    @Test
    void guestUnderWriteLoadMigratesBetweenTwoServersAndKeepsItsData() throws Exception {
        Path runDir = GuestHarness.runDir("migrate");
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, PLAN);
        Path qemu = HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        SocketDir socketDir = SocketDir.create("vb-");
        Path migration = socketDir.resolve("migration.sock");
        Path sourceQmp = socketDir.resolve("source-qmp.sock");
        List<String> serial = Collections.synchronizedList(new ArrayList<>());
        Map<String, String> verdicts = Collections.synchronizedMap(new LinkedHashMap<>());
        List<Process> qemus = new ArrayList<>();
        long start = System.nanoTime();
        try (StorageBackend sourceServer = VhostBlkServer.start(new ExportSpec(image, PLAN.diskSize(), 1, false,
                     socketDir.resolve("source.sock"), runDir.resolve("source-backend.log")));
             StorageBackend destServer = VhostBlkServer.start(new ExportSpec(image, PLAN.diskSize(), 1, false,
                     socketDir.resolve("dest.sock"), runDir.resolve("dest-backend.log")))) {
            Process dest = startQemu(qemu, runDir, "dest", destServer.socket(),
                    List.of("-incoming", "unix:" + migration));
            qemus.add(dest);
            Process source = startQemu(qemu, runDir, "source", sourceServer.socket(),
                    List.of("-qmp", "unix:" + sourceQmp + ",server=on,wait=off"));
            qemus.add(source);
            Thread destConsole = QemuGuest.console(dest, runDir.resolve("dest-serial.log"), serial, check -> {
                verdicts.put(check, "the destination guest asked for '" + check + "', which is no step of the plan");
                return true;
            });
            Thread sourceConsole = QemuGuest.console(source, runDir.resolve("source-serial.log"), serial, check -> {
                if (!check.equals("migrate")) {
                    verdicts.put(check, "the source guest asked for '" + check + "', which is no step of the plan");
                    return true;
                }
                String problem = migrate(sourceQmp, migration);
                verdicts.put(check, problem == null ? "" : problem);
                // The guest now runs on the destination: its console input is the destination's.
                QemuGuest.ack(dest);
                return false;
            });
            boolean exited = dest.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            source.destroy();
            source.waitFor(10, TimeUnit.SECONDS);
            for (Process p : qemus) {
                if (p.isAlive()) {
                    p.destroyForcibly();
                    p.waitFor(10, TimeUnit.SECONDS);
                }
            }
            destConsole.join(10_000);
            sourceConsole.join(10_000);
            GuestRun run = new GuestRun(List.copyOf(serial), exited ? dest.exitValue() : -1, !exited,
                    Duration.ofNanos(System.nanoTime() - start), Map.copyOf(verdicts),
                    runDir.resolve("dest-serial.log"), runDir.resolve("dest-qemu.log"), List.of());
            Problems problems = new Problems();
            problems.guest("guest: ", run, PLAN);
            problems.hostVerdicts("host: ", run);
            if (!verdicts.containsKey("migrate")) {
                problems.add("the guest never asked for the migration");
            }
            problems.addIfAny("image file after the guest powered off: ",
                    RestartGuestTest.checkGeneration(image, BLOCKS, FINAL_GENERATION));
            for (StorageBackend s : List.of(sourceServer, destServer)) {
                problems.stop(s.socket().getFileName() + " server", s);
            }
            problems.failIfAny("migration", () -> run.serialTail(40) + "\n--- source server log ---\n" + sourceServer.logTail(20)
                    + "\n--- destination server log ---\n" + destServer.logTail(20)
                    + "\n--- source QEMU ---\n" + Logs.tail(runDir.resolve("source-qemu.log"), 10)
                    + "\n--- destination QEMU ---\n" + Logs.tail(runDir.resolve("dest-qemu.log"), 10));
        } finally {
            for (Process p : qemus) {
                if (p.isAlive()) {
                    p.destroyForcibly();
                }
            }
            socketDir.close();
        }
    }

    private static Process startQemu(Path qemu, Path runDir, String name, Path socket, List<String> extra)
            throws IOException {
        List<String> command = QemuGuest.command(qemu, HARNESS.config(PLAN, socket, runDir, QemuGuest.Ring.SPLIT), "");
        command.addAll(extra);
        Files.writeString(runDir.resolve(name + "-qemu.cmdline"), String.join(" ", command) + "\n");
        return new ProcessBuilder(command).redirectError(runDir.resolve(name + "-qemu.log").toFile()).start();
    }

    /** Migrates the source over QMP and waits (bounded) for the outcome; null when it completed. */
    private static String migrate(Path qmpSocket, Path migration) {
        try (Qmp qmp = Qmp.connect(qmpSocket)) {
            String started = qmp.execute("{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:" + migration + "\"}}");
            if (started != null) {
                return started;
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
            while (System.nanoTime() < deadline) {
                String status = qmp.command("{\"execute\":\"query-migrate\"}");
                if (status.contains("\"status\": \"completed\"") || status.contains("\"status\":\"completed\"")) {
                    return null;
                }
                if (status.contains("failed") || status.contains("cancelled")) {
                    return "migration ended: " + status;
                }
                Thread.sleep(200);
            }
            return "migration did not complete within 300 s";
        } catch (IOException | InterruptedException e) {
            return "QMP: " + e;
        }
    }
}
