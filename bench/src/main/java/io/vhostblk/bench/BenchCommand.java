package io.vhostblk.bench;

import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code vhost-blk bench}: parses the options, runs one {@link BenchJob} and prints its {@link BenchReport}. */
@Command(name = "bench", header = "drive a vhost-user-blk back-end with fio-like jobs (load generator)", sortOptions = false,
        customSynopsis = "vhost-blk bench --socket PATH [options]",
        description = {"Plays QEMU's part against any vhost-user-blk back-end (vhost-blk serve, qemu-"
                + "storage-daemon, SPDK, ...): shares its own memory as guest RAM, sets up the "
                + "virtqueues and drives fio-like jobs, one thread per queue.", ""},
        footer = {"", "Exit status: 0 when every request completed with VIRTIO_BLK_S_OK (and verified, with",
                "--verify), 1 when any failed or the run broke, 2 for a bad command line."})
public final class BenchCommand implements Callable<Integer> {
    @Option(names = "--socket", paramLabel = "PATH", description = "the back-end's vhost-user socket (required)")
    Path socket;

    @Option(names = "--rw", paramLabel = "MODE", converter = RwModeConverter.class,
            description = "read, write, randread, randwrite, randrw. Default randread")
    RwMode rw = RwMode.RANDREAD;

    @Option(names = "--bs", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
            description = "block size, a multiple of 512 (4k, 128k, ...). Default 4k")
    long blockSize = 4096;

    @Option(names = "--iodepth", paramLabel = "N", description = "requests in flight per queue. Default 32")
    int iodepth = 32;

    @Option(names = "--queues", paramLabel = "N",
            description = "queues driven, one thread each (at most the device's num_queues). Default 1")
    int queues = 1;

    @Option(names = "--runtime", paramLabel = "TIME", converter = DurationConverter.class,
            description = "measured interval (10s, 500ms, 2m). Default 10s")
    Duration runtime = Duration.ofSeconds(10);

    @Option(names = "--ramp", paramLabel = "TIME", converter = DurationConverter.class,
            description = "unmeasured warm-up before it. Default 2s")
    Duration ramp = Duration.ofSeconds(2);

    @Option(names = "--size", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
            description = "span of offsets, from 0. Default: the whole device")
    long size;

    @Option(names = "--rwmixread", paramLabel = "PCT", description = "randrw: percentage of reads. Default 50")
    int readPercent = 50;

    @Option(names = "--pid", paramLabel = "PID", description = "the back-end's process: report its CPU time per I/O (/proc/PID/stat, over the "
            + "measured interval only)")
    Long pid;

    @Option(names = "--verify", description = "write jobs write a pattern and read every written block back afterwards; read "
            + "jobs check every block they read against it (so fill the span first with --rw "
            + "write --verify). Mismatches are errors")
    boolean verify;

    @Option(names = "--poll", description = "busy-poll the used ring instead of sleeping on the call eventfd (interrupts "
            + "suppressed)")
    boolean poll;

    @Option(names = "--no-event-idx", description = "do not negotiate VIRTIO_RING_F_EVENT_IDX")
    boolean noEventIdx;

    @Option(names = "--packed", description = "drive packed virtqueues (VIRTIO_F_RING_PACKED; the back-end must offer it)."
            + " Default: split")
    boolean packed;

    @Option(names = "--ring-size", paramLabel = "N", description = "virtqueue size (power of two). Default: the smallest of 256, 512, ... that holds"
            + " iodepth 3-descriptor chains")
    int ringSize;

    @Option(names = "--seed", paramLabel = "N", description = "random offsets' seed. Default 1")
    long seed = 1;

    @Option(names = "--stall-timeout", paramLabel = "TIME", converter = DurationConverter.class,
            description = "fail when a queue sees no completion this long with requests in flight. Default 10s")
    Duration stall = Duration.ofSeconds(10);

    @Option(names = "--idle", paramLabel = "TIME", converter = DurationConverter.class,
            description = "after the job, stay connected with every queue started and nothing in flight for"
                    + " TIME, and report the back-end's CPU use meanwhile (needs --pid)")
    Duration idle = Duration.ZERO;

    @Option(names = "--data", paramLabel = "KIND", converter = WriteDataConverter.class,
            description = "what write jobs write: zeros (default), random (new, incompressible data every write), "
                    + "compressible (half random, half zeros: about 2:1), duplicate (one of 16 fixed blocks), for "
                    + "back-ends that deduplicate or compress")
    WriteData data = WriteData.ZEROS;

    @Option(names = "--json", description = "print the report as one JSON object")
    boolean json;

    @Mixin
    CommandKit.HelpOption help;

    @Spec
    CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(Arrays.asList(args), System.out, System.err));
    }

    /** Runs {@code vhost-blk bench ARGS}; returns 0 when every request succeeded, 1 when not, 2 for usage errors. */
    public static int run(List<String> args, PrintStream out, PrintStream err) {
        return CommandKit.execute(new BenchCommand(), args, out, err);
    }

    @Override
    public Integer call() throws CommandUsageException, BenchException {
        BenchOptions options = options();
        PrintWriter out = spec.commandLine().getOut();
        BenchReport report = new BenchJob(options).run();
        out.print(options.json() ? report.toJson() + "\n" : report.toText());
        out.flush();
        if (!report.ok()) {
            spec.commandLine().getErr().println("vhost-blk bench: " + report.problem());
            return 1;
        }
        return 0;
    }

    /** The options checked together. */
    BenchOptions options() throws CommandUsageException {
        CommandKit.checkRange("--iodepth", iodepth, 1, 4096);
        CommandKit.checkRange("--queues", queues, 1, 64);
        CommandKit.checkRange("--rwmixread", readPercent, 0, 100);
        if (pid != null) {
            CommandKit.checkRange("--pid", pid, 1, Integer.MAX_VALUE);
        }
        long process = pid != null ? pid : -1;
        CommandKit.checkRange("--seed", seed, 0, Integer.MAX_VALUE);
        if (socket == null) {
            throw new BenchUsageException("--socket is required");
        }
        if (socket.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length > 107) {
            throw new BenchUsageException("--socket: path '" + socket + "' is longer than a Unix socket path may be (107 bytes)");
        }
        if (blockSize % 512 != 0 || blockSize > (1 << 30)) {
            throw new BenchUsageException("--bs: " + blockSize + " is not a multiple of 512 up to 1G");
        }
        if (size % blockSize != 0) {
            throw new BenchUsageException("--size: " + size + " is not a multiple of --bs " + blockSize);
        }
        if (runtime.isZero()) {
            throw new BenchUsageException("--runtime must be more than zero");
        }
        if (!idle.isZero() && process < 0) {
            throw new BenchUsageException("--idle measures the back-end's CPU: give its --pid");
        }
        if (stall.isZero()) {
            throw new BenchUsageException("--stall-timeout must be more than zero");
        }
        int minRing = BenchOptions.DESCRIPTORS_PER_IO * iodepth;
        int ring = ringSize;
        if (ring == 0) {
            ring = Math.max(256, Integer.highestOneBit(minRing - 1) << 1);
            if (ring > 32768) {
                throw new BenchUsageException("--iodepth: " + iodepth + " chains of 3 descriptors need a ring over 32768");
            }
        } else if (ring < 2 || ring > 32768 || Integer.bitCount(ring) != 1) {
            throw new BenchUsageException("--ring-size: " + ring + " is not a power of two in 2..32768");
        } else if (ring < minRing) {
            throw new BenchUsageException("--ring-size: " + ring + " descriptors cannot hold --iodepth " + iodepth
                    + " chains of 3 (needs " + minRing + ")");
        }
        return new BenchOptions(socket, rw, (int) blockSize, iodepth, queues, runtime, ramp, size, process, json, verify, poll,
                !noEventIdx, ring, readPercent, seed, stall, idle, packed, data);
    }

    /** {@code --data}: the content of written blocks. */
    static final class WriteDataConverter extends CommandKit.Converter<WriteData> {
        WriteDataConverter() {
            super(WriteData::parse);
        }
    }

    /** {@code --rw}: fio's spelling of an I/O pattern. */
    static final class RwModeConverter extends CommandKit.Converter<RwMode> {
        RwModeConverter() {
            super(RwMode::parse);
        }
    }
}
