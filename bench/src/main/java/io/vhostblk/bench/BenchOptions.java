package io.vhostblk.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The options of {@code vhost-blk bench}, parsed and checked.
 *
 * @param size      span of the device the job's offsets fall in (bytes from 0); 0 means the whole device
 * @param ringSize  virtqueue size; 0 picks the smallest power of two (at least 256) holding iodepth chains
 * @param pid       the back-end process whose CPU time is reported per I/O, or -1
 * @param idle      after the job, how long to stay connected with the queues started and no
 *                  I/O, measuring the back-end's CPU (zero: disconnect at once)
 */
public record BenchOptions(Path socket, RwMode rw, int blockSize, int iodepth, int queues, Duration runtime,
                           Duration ramp, long size, long pid, boolean json, boolean verify, boolean busyPoll,
                           boolean eventIdx, int ringSize, int readPercent, long seed, Duration stallTimeout,
                           Duration idle, WriteData data) {

    /** Descriptors per request: header, data, status. */
    static final int DESCRIPTORS_PER_IO = 3;

    public static final String HELP = """
            Usage: vhost-blk bench --socket PATH [options]

            Plays QEMU's part against any vhost-user-blk back-end (vhost-blk serve,
            qemu-storage-daemon, SPDK, ...): shares its own memory as guest RAM, sets up
            the virtqueues and drives fio-like jobs, one thread per queue.

              --socket PATH     the back-end's vhost-user socket (required)
              --rw MODE         read, write, randread, randwrite, randrw. Default randread
              --bs SIZE         block size, a multiple of 512 (4k, 128k, ...). Default 4k
              --iodepth N       requests in flight per queue. Default 32
              --queues N        queues driven, one thread each (at most the device's
                                num_queues). Default 1
              --runtime TIME    measured interval (10s, 500ms, 2m). Default 10s
              --ramp TIME       unmeasured warm-up before it. Default 2s
              --size SIZE       span of offsets, from 0. Default: the whole device
              --rwmixread PCT   randrw: percentage of reads. Default 50
              --pid PID         the back-end's process: report its CPU time per I/O
                                (/proc/PID/stat, over the measured interval only)
              --data KIND       what write jobs write: zeros (default), random (new,
                                incompressible data every write), compressible (half
                                random, half zeros: about 2:1), duplicate (one of 16
                                fixed blocks), for back-ends that deduplicate or compress
              --verify          write jobs write a pattern and read every written
                                block back afterwards; read jobs check every block
                                they read against it (so fill the span first with
                                --rw write --verify). Mismatches are errors
              --poll            busy-poll the used ring instead of sleeping on the
                                call eventfd (interrupts suppressed)
              --no-event-idx    do not negotiate VIRTIO_RING_F_EVENT_IDX
              --ring-size N     virtqueue size (power of two). Default: the smallest
                                of 256, 512, ... that holds iodepth 3-descriptor chains
              --seed N          random offsets' seed. Default 1
              --stall-timeout TIME  fail when a queue sees no completion this long
                                with requests in flight. Default 10s
              --idle TIME       after the job, stay connected with every queue started
                                and nothing in flight for TIME, and report the
                                back-end's CPU use meanwhile (needs --pid)
              --json            print the report as one JSON object

            Exit status: 0 when every request completed with VIRTIO_BLK_S_OK (and
            verified, with --verify), 1 when any failed or the run broke, 2 for a bad
            command line.
            """;

    /** Parses the arguments after {@code bench}. */
    public static BenchOptions parse(List<String> args) throws BenchUsageException {
        Path socket = null;
        RwMode rw = RwMode.RANDREAD;
        long bs = 4096;
        int iodepth = 32;
        int queues = 1;
        Duration runtime = Duration.ofSeconds(10);
        Duration ramp = Duration.ofSeconds(2);
        long size = 0;
        long pid = -1;
        boolean json = false;
        boolean verify = false;
        boolean poll = false;
        boolean eventIdx = true;
        int ringSize = 0;
        int readPercent = 50;
        long seed = 1;
        Duration stall = Duration.ofSeconds(10);
        Duration idle = Duration.ZERO;
        WriteData data = WriteData.ZEROS;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            switch (a) {
                case "--socket" -> socket = Path.of(value(args, ++i, a));
                case "--rw" -> rw = RwMode.parse(value(args, ++i, a));
                case "--bs" -> bs = ArgValues.size(a, value(args, ++i, a));
                case "--iodepth" -> iodepth = ArgValues.integer(a, value(args, ++i, a), 1, 4096);
                case "--queues" -> queues = ArgValues.integer(a, value(args, ++i, a), 1, 64);
                case "--runtime" -> runtime = ArgValues.duration(a, value(args, ++i, a));
                case "--ramp" -> ramp = ArgValues.duration(a, value(args, ++i, a));
                case "--size" -> size = ArgValues.size(a, value(args, ++i, a));
                case "--rwmixread" -> readPercent = ArgValues.integer(a, value(args, ++i, a), 0, 100);
                case "--pid" -> pid = ArgValues.integer(a, value(args, ++i, a), 1, Integer.MAX_VALUE);
                case "--verify" -> verify = true;
                case "--poll" -> poll = true;
                case "--no-event-idx" -> eventIdx = false;
                case "--ring-size" -> ringSize = ArgValues.integer(a, value(args, ++i, a), 2, 32768);
                case "--seed" -> seed = ArgValues.integer(a, value(args, ++i, a), 0, Integer.MAX_VALUE);
                case "--stall-timeout" -> stall = ArgValues.duration(a, value(args, ++i, a));
                case "--idle" -> idle = ArgValues.duration(a, value(args, ++i, a));
                case "--json" -> json = true;
                case "--data" -> data = WriteData.parse(value(args, ++i, a));
                default -> throw new BenchUsageException("unknown option '" + a + "' (see vhost-blk bench --help)");
            }
        }
        if (socket == null) {
            throw new BenchUsageException("--socket is required");
        }
        if (socket.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length > 107) {
            throw new BenchUsageException("--socket: path '" + socket + "' is longer than a Unix socket path may be (107 bytes)");
        }
        if (bs % 512 != 0 || bs > (1 << 30)) {
            throw new BenchUsageException("--bs: " + bs + " is not a multiple of 512 up to 1G");
        }
        if (size % bs != 0) {
            throw new BenchUsageException("--size: " + size + " is not a multiple of --bs " + bs);
        }
        if (runtime.isZero()) {
            throw new BenchUsageException("--runtime must be more than zero");
        }
        if (!idle.isZero() && pid < 0) {
            throw new BenchUsageException("--idle measures the back-end's CPU: give its --pid");
        }
        if (stall.isZero()) {
            throw new BenchUsageException("--stall-timeout must be more than zero");
        }
        int minRing = DESCRIPTORS_PER_IO * iodepth;
        if (ringSize == 0) {
            ringSize = Math.max(256, Integer.highestOneBit(minRing - 1) << 1);
            if (ringSize > 32768) {
                throw new BenchUsageException("--iodepth: " + iodepth + " chains of 3 descriptors need a ring over 32768");
            }
        } else if (Integer.bitCount(ringSize) != 1) {
            throw new BenchUsageException("--ring-size: " + ringSize + " is not a power of two");
        } else if (ringSize < minRing) {
            throw new BenchUsageException("--ring-size: " + ringSize + " descriptors cannot hold --iodepth " + iodepth
                    + " chains of 3 (needs " + minRing + ")");
        }
        return new BenchOptions(socket, rw, (int) bs, iodepth, queues, runtime, ramp, size, pid, json, verify, poll,
                eventIdx, ringSize, readPercent, seed, stall, idle, data);
    }

    private static String value(List<String> args, int i, String option) throws BenchUsageException {
        if (i >= args.size() || args.get(i).startsWith("--")) {
            throw new BenchUsageException(option + " needs a value");
        }
        return args.get(i);
    }
}
