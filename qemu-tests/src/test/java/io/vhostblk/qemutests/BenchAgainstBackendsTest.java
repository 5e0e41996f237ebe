package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.bench.BenchCommand;
import io.vhostblk.bench.BenchException;
import io.vhostblk.bench.BenchJob;
import io.vhostblk.bench.BenchOptions;
import io.vhostblk.bench.BenchReport;
import io.vhostblk.bench.BenchUsageException;
import io.vhostblk.testsupport.ServerJvm;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vhost-blk bench} (in this JVM) against real back-end processes, vhost-blk and
 * qemu-storage-daemon: it must complete I/O, report ordered latency percentiles and the
 * back-end's CPU, verify data across sessions, and fail when the back-end fails requests or loses
 * data. Runs are about a second each; nothing here is a speed threshold.
 */
class BenchAgainstBackendsTest {
    private static final long DISK_SIZE = 64L << 20;
    /** Generous: the machine may be busy with guest tests; a stall still ends the run. */
    private static final String STALL = "30s";

    @TempDir
    Path dir;
    private Path socketDir;
    private final List<ProcessBackend> started = new ArrayList<>();

    @BeforeEach
    void socketDirectory() throws IOException {
        // sun_path holds 108 bytes: sockets live in a short /tmp directory, not under target/.
        socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbb-");
    }

    @AfterEach
    void stopBackends() throws IOException {
        started.forEach(ProcessBackend::close);
        TestDirs.deleteRecursively(socketDir);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Backend.class)
    void randomReadsOnTwoQueuesReportIopsOrderedPercentilesAndBackendCpu(Backend backend) throws Exception {
        ProcessBackend b = start(backend, 2, false);
        BenchReport r = job(b, "--rw", "randread", "--queues", "2", "--iodepth", "16", "--runtime", "1s",
                "--ramp", "200ms", "--pid", Long.toString(b.pid()));
        String why = r.toText() + "\n--- " + b.name() + " log ---\n" + b.logTail(20);
        assertTrue(r.ok(), r.problem() + "\n" + why);
        assertTrue(r.ios() > 0, why);
        assertEquals(r.ios(), r.reads(), why);
        assertEquals(0, r.errors(), why);
        assertEquals(r.ios() * 4096, r.bytes(), why);
        assertTrue(r.latP50Us() > 0, why);
        assertTrue(r.latP50Us() <= r.latP99Us() && r.latP99Us() <= r.latP999Us() && r.latP999Us() <= r.latMaxUs(),
                "percentiles out of order: " + why);
        assertTrue(Double.isFinite(r.backendCpuUsPerIo()) && r.backendCpuUsPerIo() > 0,
                "back-end CPU per I/O must be measured with --pid: " + why);
        assertTrue(Double.isFinite(r.generatorCpuUsPerIo()), why);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Backend.class)
    void verifiedSequentialWritesReadBackInALaterSession(Backend backend) throws Exception {
        ProcessBackend b = start(backend, 1, false);
        BenchReport w = job(b, "--rw", "write", "--verify", "--size", "1M", "--runtime", "1s", "--ramp", "0");
        assertTrue(w.ok(), w.problem() + "\n" + w.toText());
        // Sequential writes from block 0: how far a second gets depends on the machine, so the
        // checks follow what was written rather than assume all 256 blocks of 1 MiB.
        long written = Math.min(256, w.writes());
        assertTrue(written > 0, "no write completed: " + w.toText());
        assertEquals(written, w.verifiedBlocks(), "every written block is read back: " + w.toText());
        // A new connection: the data must still be there, read at random within what was written.
        BenchReport r = job(b, "--rw", "randread", "--verify", "--size", Long.toString(written * 4096), "--runtime", "1s",
                "--ramp", "0");
        assertTrue(r.ok(), r.problem() + "\n" + r.toText());
        assertEquals(r.reads(), r.ios(), r.toText());
        assertTrue(r.verifiedBlocks() >= r.ios() && r.verifiedBlocks() > 0, r.toText());
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Backend.class)
    void verifiedRandomWritesOnTwoQueues(Backend backend) throws Exception {
        ProcessBackend b = start(backend, 2, false);
        BenchReport r = job(b, "--rw", "randwrite", "--verify", "--queues", "2", "--size", "4M", "--runtime", "1s",
                "--ramp", "0");
        assertTrue(r.ok(), r.problem() + "\n" + r.toText());
        assertTrue(r.verifiedBlocks() > 0 && r.verifiedBlocks() <= 2 * 1024, r.toText());
        assertEquals(0, r.verifyMismatches(), r.toText());
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Backend.class)
    void writesToAReadOnlyExportAreCountedAsErrorsAndFailTheRun(Backend backend) throws Exception {
        ProcessBackend b = start(backend, 1, true);
        Run run = command(b, "--rw", "randwrite", "--runtime", "500ms", "--ramp", "0", "--json");
        assertEquals(1, run.status, "exit status; stdout: " + run.out + " stderr: " + run.err);
        long errors = jsonLong(run.out, "errors");
        assertTrue(errors > 0, run.out);
        assertTrue(errors >= jsonLong(run.out, "ios"), "every write failed (errors also count the drain): " + run.out);
        assertEquals(1, jsonLong(run.out, "first_error_status"), "VIRTIO_BLK_S_IOERR: " + run.out);
        assertTrue(run.err.contains("failed"), run.err);
    }

    /** Back-ends that accept writes and store nothing: reads leave the buffer as it was. */
    enum NullBackend { QSD_NULL_CO, VHOST_BLK_NULL }

    @ParameterizedTest(name = "{0}")
    @EnumSource(NullBackend.class)
    void verifyCatchesABackEndThatDoesNotStoreData(NullBackend which) throws Exception {
        ProcessBackend b = startNull(which);
        Run run = command(b, "--rw", "randwrite", "--verify", "--size", "1M", "--runtime", "500ms", "--ramp", "0",
                "--json");
        assertEquals(1, run.status, "stdout: " + run.out + " stderr: " + run.err);
        assertEquals(0, jsonLong(run.out, "errors"), run.out);
        long checked = jsonLong(run.out, "verified_blocks");
        assertTrue(checked > 0, run.out);
        assertEquals(checked, jsonLong(run.out, "verify_mismatches"), "no block can match: " + run.out);
        assertTrue(run.err.contains("differ"), run.err);
    }

    /**
     * Packed virtqueues: verified random writes on two queues whose 64-entry rings wrap many times
     * with requests completing out of order, then sequential writes read back at random in a new
     * session on two queues; a back-end
     * without VIRTIO_F_RING_PACKED (qsd) is refused by the bench with a reason.
     */
    @Test
    void packedRingsServeVerifiedWritesAndReadsOnTwoQueues() throws Exception {
        ProcessBackend b = start(Backend.VHOST_BLK, 2, false);
        BenchReport w = job(b, "--packed", "--rw", "randwrite", "--verify", "--queues", "2", "--iodepth", "16",
                "--ring-size", "64", "--size", "4M", "--runtime", "1s", "--ramp", "0");
        assertTrue(w.ok(), w.problem() + "\n" + w.toText() + "\n" + b.logTail(20));
        // The job reads every block it wrote back (same session) and compares it.
        assertTrue(w.ios() > 2 * 64 && w.errors() == 0 && w.verifiedBlocks() > 0 && w.verifyMismatches() == 0, w.toText());
        // Sequential writes from block 0 fill a span; a new session reads it back at random on fresh rings.
        BenchReport s = job(b, "--packed", "--rw", "write", "--verify", "--size", "1M", "--runtime", "1s", "--ramp", "0");
        long written = Math.min(256, s.writes());
        assertTrue(s.ok() && written > 0, s.problem() + "\n" + s.toText());
        BenchReport r = job(b, "--packed", "--rw", "randread", "--verify", "--queues", "2", "--iodepth", "16",
                "--ring-size", "64", "--size", Long.toString(written * 4096), "--runtime", "1s", "--ramp", "0");
        assertTrue(r.ok(), r.problem() + "\n" + r.toText() + "\n" + b.logTail(20));
        assertTrue(r.reads() > 2 * 64 && r.errors() == 0 && r.verifiedBlocks() > 0 && r.verifyMismatches() == 0, r.toText());
        assertTrue(b.logTail(400).contains("started, packed"), b.logTail(20));
        assertEquals(0, b.stop().code(), "clean shutdown after packed rings:\n" + b.logTail(20));

        ProcessBackend qsd = start(Backend.QSD, 1, false);
        Run refused = command(qsd, "--packed", "--rw", "randread", "--runtime", "500ms", "--ramp", "0");
        assertEquals(1, refused.status, "stdout: " + refused.out + " stderr: " + refused.err);
        assertTrue(refused.err.contains("does not offer VIRTIO_F_RING_PACKED"), refused.err);
    }

    @Test
    void kickOnRingServesVerifiedWritesAndReadsOnTwoQueues() throws Exception {
        // The io_uring driver with the kick eventfd watched on each queue's ring (--kick-on-ring).
        Path image = dir.resolve("ring.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(DISK_SIZE);
        }
        ExportSpec spec = new ExportSpec(image, DISK_SIZE, 2, false, socketDir.resolve("ring.sock"),
                dir.resolve("ring.log"));
        ProcessBackend b = new ProcessBackend("VHOST_BLK_KICK_ON_RING", spec, List.of(
                ServerJvm.java(),
                ServerJvm.OPTIONS, "-cp", System.getProperty("java.class.path"),
                VhostBlkServer.MAIN_CLASS, "serve", "--socket", spec.socket().toString(), "--disk", image.toString(),
                "--driver", "io_uring", "--queues", "2", "--kick-on-ring")) {
        };
        started.add(b);
        BenchReport w = job(b, "--rw", "write", "--verify", "--queues", "2", "--iodepth", "8", "--size", "4M",
                "--runtime", "1s", "--ramp", "0");
        assertTrue(w.ok(), w.problem() + "\n" + w.toText() + "\n" + b.logTail(20));
        assertTrue(w.writes() > 0 && w.errors() == 0, w.toText());
        BenchReport r = job(b, "--rw", "randread", "--verify", "--queues", "2", "--iodepth", "8", "--size", "4M",
                "--runtime", "1s", "--ramp", "0");
        assertTrue(r.ok(), r.problem() + "\n" + r.toText() + "\n" + b.logTail(20));
        assertTrue(r.reads() > 0 && r.errors() == 0 && r.verifiedBlocks() > 0, r.toText());
        assertEquals(0, b.stop().code(), "clean shutdown with the kick on the ring:\n" + b.logTail(20));
    }

    // ---- helpers ----------------------------------------------------------------------------

    private ProcessBackend start(Backend backend, int queues, boolean readOnly) throws IOException {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(DISK_SIZE);
        }
        ExportSpec spec = new ExportSpec(image, DISK_SIZE, queues, readOnly, socketDir.resolve("blk.sock"),
                dir.resolve("backend.log"));
        ProcessBackend b = (ProcessBackend) backend.start(spec);
        started.add(b);
        return b;
    }

    private ProcessBackend startNull(NullBackend which) {
        ExportSpec spec = new ExportSpec(dir.resolve("unused.img"), DISK_SIZE, 1, false,
                socketDir.resolve("null.sock"), dir.resolve("null.log"));
        List<String> command = switch (which) {
            case QSD_NULL_CO -> List.of(HostTools.program("qemu-storage-daemon", "qemu-system-x86").toString(),
                    "--blockdev", "driver=null-co,node-name=n0,size=" + DISK_SIZE + ",read-zeroes=off",
                    "--export", "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=" + spec.socket()
                            + ",writable=on,num-queues=1");
            case VHOST_BLK_NULL -> List.of(ServerJvm.java(),
                    ServerJvm.OPTIONS, "-cp", System.getProperty("java.class.path"),
                    VhostBlkServer.MAIN_CLASS, "serve", "--socket", spec.socket().toString(), "--driver", "null",
                    "--size", Long.toString(DISK_SIZE));
        };
        ProcessBackend b = new ProcessBackend(which.name(), spec, command) {
        };
        started.add(b);
        return b;
    }

    private static List<String> args(ProcessBackend b, String... extra) {
        List<String> args = new ArrayList<>(List.of("--socket", b.socket().toString(), "--stall-timeout", STALL));
        args.addAll(List.of(extra));
        return args;
    }

    /**
     * Runs a bench job. A back-end serves one front-end at a time and notices the previous job's
     * hang-up a moment later, refusing a connection that comes first: a job refused before any
     * I/O is tried again (a bounded number of times).
     */
    private static BenchReport job(ProcessBackend b, String... extra) throws BenchUsageException, InterruptedException {
        for (int attempt = 1; ; attempt++) {
            try {
                return new BenchJob(BenchOptions.parse(args(b, extra))).run();
            } catch (BenchException e) {
                if (attempt == 50 || !e.getMessage().startsWith("setting up the device")) {
                    return fail("bench against " + b.name() + " failed: " + e.getMessage() + "\n--- log ---\n"
                            + b.logTail(30), e);
                }
                Thread.sleep(100);
            }
        }
    }

    private record Run(int status, String out, String err) {
    }

    private static Run command(ProcessBackend b, String... extra) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = BenchCommand.run(args(b, extra), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static long jsonLong(String json, String field) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(field) + "\":(-?\\d+)").matcher(json);
        if (!m.find()) {
            return fail("no integer field " + field + " in " + json);
        }
        return Long.parseLong(m.group(1));
    }
}
