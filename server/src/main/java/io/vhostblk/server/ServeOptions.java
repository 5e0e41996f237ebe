package io.vhostblk.server;

import io.vhostblk.drivers.DriverKind;
import io.vhostblk.drivers.FaultSpec;
import io.vhostblk.drivers.RbdClient;
import io.vhostblk.drivers.RbdImageName;
import io.vhostblk.frontend.QueueTuning;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/** The options of {@code vhost-blk serve}, parsed and checked. */
public record ServeOptions(Path socket, Path disk, long size, int queues, int queueSize, boolean readOnly,
                           String deviceId, String vmName, boolean writeback, DriverKind driver, boolean direct,
                           boolean readZeroes, int pollMicros, Path policy, Path moduleDir, Path control, boolean kickOnRing,
                           InetSocketAddress metrics, RbdClient rbd, FaultSpec inject) {

    /** The VM name when neither --vm nor the policy gives one. */
    public static final String UNKNOWN_VM = "unknown";

    public static final String HELP = """
            Usage: vhost-blk serve --socket PATH --disk FILE [options]

            Serves a raw disk image (or block device) to one QEMU/KVM guest as a
            vhost-user-blk device. QEMU connects to the Unix socket; the command prints
            the QEMU arguments that attach the disk.

              --socket PATH     Unix socket to listen on (created; removed on exit)
              --disk FILE       raw image or block device to serve; created sparse when
                                missing (needs --size)
              --size SIZE       size of a new image: bytes or with K, M, G, T suffix
                                (binary). For an existing image it must match, or be
                                left out to take the image's size. Default when the
                                image is created: 8G
              --queues N        virtqueues (one event loop thread each), 1..64; give
                                QEMU the same num-queues. Default 1
              --queue-size N    largest virtqueue size accepted from the front-end,
                                a power of two 64..32768. Default 1024
              --driver KIND     auto (default: io_uring, or the file driver with a
                                logged reason when the kernel refuses io_uring),
                                io_uring, file, ram (memory, --size bytes, lost on
                                exit), null (discards writes; for benchmarks) or
                                rbd (a Ceph image: --disk rbd:POOL/IMAGE[@SNAP],
                                a snapshot read-only; docs/rbd.md)
              --rbd-conf FILE   rbd: the cluster's ceph.conf (default: librados's search,
                                $CEPH_CONF, /etc/ceph/ceph.conf)
              --rbd-id NAME     rbd: the client name without 'client.' (default admin)
              --rbd-keyring FILE
                                rbd: the client's keyring (default: ceph.conf's)
              --rbd-timeout S   rbd: seconds connecting, or one request, may wait for
                                the cluster before failing (the guest sees an I/O
                                error). Default 30
              --no-direct       open the image without O_DIRECT (through the host
                                page cache); io_uring driver only
              --read-zeroes     null driver: reads return zeros (default: reads leave
                                guest memory untouched, like qemu's null-co)
              --poll-us N       adaptive polling: spin up to N microseconds for new
                                requests and completions before sleeping (guest kicks
                                suppressed meanwhile); the window grows while work
                                arrives within it and shrinks to 0 when idle.
                                0 turns polling off. Default 50
              --kick-on-ring    io_uring driver: wait for guest kicks on the driver's
                                ring, so one io_uring_enter submits and sleeps
                                (experimental; see docs/benchmarks.md)
              --read-only       export read-only: the guest sees VIRTIO_BLK_F_RO and
                                every write is refused with an I/O error
              --no-writeback    advertise a write-through cache (CONFIG_WCE off)
              --id NAME         device id for logs and the control socket
                                (default: the disk file's name)
              --vm NAME         VM name for logs (default: the policy's vm, else unknown)
              --policy FILE     the VM's module policy (docs/policy.md): modules, their
                                jars' SHA-256, order, selectors, settings
              --module-dir DIR  where module jars are (overrides the policy's
                                module-dir; default: the policy file's directory)
              --control PATH    control socket (mode 0600) for 'vhost-blk ctl': list
                                devices, enable/disable/move modules, counters
                                (default: none)
              --metrics [ADDR:]PORT
                                serve Prometheus metrics at http://ADDR:PORT/metrics
                                (ADDR defaults to 127.0.0.1; give another address to
                                expose them beyond this host). Default: off
              --inject SPEC     fault injection for tests and benchmarks (never in
                                production): comma-separated latency=500us,
                                eio=START-END (bytes, END exclusive; repeatable),
                                eio-nth=N, enospc-after=BYTES, short=N (every Nth
                                read/write reports a short transfer), power-cut or
                                power-cut=N (after N writes every request fails;
                                writes no completed flush covered are rolled back on
                                exit), reorder=SEED (power cut: each such write
                                survives at random). See docs/reliability.md
              --help            this text

            Stops cleanly on SIGTERM or SIGINT: in-flight requests finish, the image is
            synced, the socket file is removed.
            """;

    /** Parses the arguments after {@code serve}. */
    public static ServeOptions parse(List<String> args) throws UsageException {
        Path socket = null;
        Path disk = null;
        long size = -1;
        int queues = 1;
        int queueSize = 1024;
        boolean readOnly = false;
        boolean writeback = true;
        String id = null;
        String vm = UNKNOWN_VM;
        DriverKind driver = DriverKind.AUTO;
        boolean direct = true;
        boolean readZeroes = false;
        int pollMicros = QueueTuning.DEFAULTS.pollMicros();
        boolean kickOnRing = false;
        Path policy = null;
        Path moduleDir = null;
        Path control = null;
        InetSocketAddress metrics = null;
        Path rbdConf = null;
        String rbdId = null;
        Path rbdKeyring = null;
        int rbdTimeout = RbdClient.DEFAULTS.timeoutSeconds();
        FaultSpec inject = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            switch (a) {
                case "--socket" -> socket = Path.of(value(args, ++i, a));
                case "--disk" -> disk = Path.of(value(args, ++i, a));
                case "--size" -> size = Sizes.parse(a, value(args, ++i, a));
                case "--queues" -> queues = intValue(a, value(args, ++i, a), 1, 64);
                case "--queue-size" -> queueSize = intValue(a, value(args, ++i, a), 64, 32768);
                case "--driver" -> driver = driverKind(value(args, ++i, a));
                case "--no-direct" -> direct = false;
                case "--read-zeroes" -> readZeroes = true;
                case "--poll-us" -> pollMicros = intValue(a, value(args, ++i, a), 0, 1_000_000);
                case "--kick-on-ring" -> kickOnRing = true;
                case "--read-only" -> readOnly = true;
                case "--no-writeback" -> writeback = false;
                case "--id" -> id = value(args, ++i, a);
                case "--vm" -> vm = value(args, ++i, a);
                case "--policy" -> policy = Path.of(value(args, ++i, a));
                case "--module-dir" -> moduleDir = Path.of(value(args, ++i, a));
                case "--control" -> control = Path.of(value(args, ++i, a));
                case "--metrics" -> metrics = metricsAddress(a, value(args, ++i, a));
                case "--rbd-conf" -> rbdConf = Path.of(value(args, ++i, a));
                case "--rbd-id" -> rbdId = value(args, ++i, a);
                case "--rbd-keyring" -> rbdKeyring = Path.of(value(args, ++i, a));
                case "--rbd-timeout" -> rbdTimeout = intValue(a, value(args, ++i, a), 1, 86_400);
                case "--inject" -> inject = faultSpec(value(args, ++i, a));
                default -> throw new UsageException("unknown option '" + a + "' (see vhost-blk serve --help)");
            }
        }
        if (socket == null) {
            throw new UsageException("--socket is required");
        }
        if (disk == null && driver != DriverKind.RAM && driver != DriverKind.NULL) {
            throw new UsageException("--disk is required");
        }
        boolean rbdDisk = disk != null && RbdImageName.isRbd(disk.toString());
        if (driver == DriverKind.RBD || rbdDisk) {
            if (driver != DriverKind.RBD && driver != DriverKind.AUTO) {
                throw new UsageException("--disk " + disk + " is an RBD image; it needs --driver rbd, not "
                        + driver.name().toLowerCase(java.util.Locale.ROOT));
            }
            driver = DriverKind.RBD;
            try {
                RbdImageName.parse(disk.toString());
            } catch (IllegalArgumentException e) {
                throw new UsageException("--disk: " + e.getMessage());
            }
        } else if (rbdConf != null || rbdId != null || rbdKeyring != null) {
            throw new UsageException("--rbd-conf, --rbd-id and --rbd-keyring need --driver rbd");
        }
        if (Integer.bitCount(queueSize) != 1) {
            throw new UsageException("--queue-size: " + queueSize + " is not a power of two");
        }
        if (size >= 0 && size % 512 != 0) {
            throw new UsageException("--size: " + size + " bytes is not a multiple of 512");
        }
        if (socket.toAbsolutePath().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 107) {
            throw new UsageException("--socket: path '" + socket + "' is longer than a Unix socket path may be (107 bytes)");
        }
        if (disk == null && (driver == DriverKind.RAM || driver == DriverKind.NULL)) {
            disk = Path.of(driver.name().toLowerCase(java.util.Locale.ROOT));
        }
        if (control != null && control.toAbsolutePath().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 107) {
            throw new UsageException("--control: path '" + control + "' is longer than a Unix socket path may be (107 bytes)");
        }
        if (control != null && control.toAbsolutePath().normalize().equals(socket.toAbsolutePath().normalize())) {
            throw new UsageException("--control: must differ from --socket (" + socket + ")");
        }
        if (moduleDir != null && policy == null) {
            throw new UsageException("--module-dir needs --policy (the policy names the jars and their digests)");
        }
        if (id == null) {
            id = driver == DriverKind.RBD ? RbdImageName.parse(disk.toString()).image() : disk.getFileName().toString();
        }
        if ((driver == DriverKind.RAM || driver == DriverKind.NULL) && size < 0) {
            throw new UsageException("--size is required with --driver " + driver.name().toLowerCase(java.util.Locale.ROOT));
        }
        return new ServeOptions(socket, disk, size, queues, queueSize, readOnly, id, vm, writeback, driver, direct,
                readZeroes, pollMicros, policy, moduleDir, control, kickOnRing, metrics,
                new RbdClient(rbdConf, rbdId, rbdKeyring, rbdTimeout), inject);
    }

    /** {@code PORT} (on loopback) or {@code HOST:PORT}; an IPv6 host goes in brackets. */
    static InetSocketAddress metricsAddress(String option, String v) throws UsageException {
        int colon = v.lastIndexOf(':');
        String host = colon < 0 ? "127.0.0.1" : v.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.isEmpty()) {
            throw new UsageException(option + ": '" + v + "' has no address before ':'");
        }
        int port = intValue(option, colon < 0 ? v : v.substring(colon + 1), 0, 65535);
        return InetSocketAddress.createUnresolved(host, port);
    }

    private static DriverKind driverKind(String v) throws UsageException {
        try {
            return DriverKind.parse(v);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--driver: " + e.getMessage());
        }
    }

    private static FaultSpec faultSpec(String v) throws UsageException {
        try {
            return FaultSpec.parse(v);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--inject: " + e.getMessage());
        }
    }

    static String value(List<String> args, int i, String option) throws UsageException {
        if (i >= args.size() || args.get(i).startsWith("--")) {
            throw new UsageException(option + " needs a value");
        }
        return args.get(i);
    }

    static int intValue(String option, String v, int min, int max) throws UsageException {
        try {
            int n = Integer.parseInt(v);
            if (n < min || n > max) {
                throw new UsageException(option + ": " + n + " is outside " + min + ".." + max);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException(option + ": '" + v + "' is not a number");
        }
    }
}
