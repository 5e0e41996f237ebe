package io.vhostblk.server;

import io.vhostblk.drivers.DriverKind;
import io.vhostblk.drivers.DriverOptions;
import io.vhostblk.drivers.FaultSpec;
import io.vhostblk.drivers.RbdClient;
import io.vhostblk.drivers.RbdImageName;
import io.vhostblk.frontend.QueueTuning;
import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;

/**
 * One device's options on the command line ({@code serve}), in a host configuration's {@code [device ID]}
 * section, and in {@code ctl device-add}: picocli fills the fields, {@link #options()} checks how they combine.
 */
@Command(name = "serve")
final class DeviceOptions {
    @Option(names = "--socket", paramLabel = "PATH", order = 1,
            description = "Unix socket to listen on (created; removed on exit)")
    Path socket;

    @Option(names = "--disk", paramLabel = "FILE", order = 2,
            description = "raw image or block device to serve; created sparse when missing (needs --size)")
    Path disk;

    @Option(names = "--size", paramLabel = "SIZE", converter = ByteSizes.Converter.class, order = 3,
            description = "size of a new image: bytes or with K, M, G, T suffix (binary). For an existing "
                    + "image it must match, or be left out to take the image's size. Default when the "
                    + "image is created: 8G")
    long size = -1;

    @Option(names = "--queues", paramLabel = "N", order = 4,
            description = "virtqueues (one event loop thread each), 1..64; give QEMU the same num-queues. Default 1")
    int queues = 1;

    @Option(names = "--queue-size", paramLabel = "N", order = 5,
            description = "largest virtqueue size accepted from the front-end, a power of two 64..32768. Default 1024")
    int queueSize = 1024;

    @Option(names = "--driver", paramLabel = "KIND", converter = DriverKindConverter.class, order = 6,
            description = "auto (default: io_uring, or the file driver with a logged reason when the kernel"
                    + " refuses io_uring), io_uring, file, ram (memory, --size bytes, lost on exit), "
                    + "null (discards writes; for benchmarks) or rbd (a Ceph image: --disk "
                    + "rbd:POOL/IMAGE[@SNAP], a snapshot read-only; docs/rbd.md)")
    DriverKind driver = DriverKind.AUTO;

    @Option(names = "--rbd-conf", paramLabel = "FILE", order = 7,
            description = "rbd: the cluster's ceph.conf (default: librados's search, $CEPH_CONF, /etc/ceph/ceph.conf)")
    Path rbdConf;

    @Option(names = "--rbd-id", paramLabel = "NAME", order = 8,
            description = "rbd: the client name without 'client.' (default admin)")
    String rbdId;

    @Option(names = "--rbd-keyring", paramLabel = "FILE", order = 9,
            description = "rbd: the client's keyring (default: ceph.conf's)")
    Path rbdKeyring;

    @Option(names = "--rbd-timeout", paramLabel = "S", order = 10,
            description = "rbd: seconds connecting, or one request, may wait for the cluster before failing"
                    + " (the guest sees an I/O error). Default 30")
    int rbdTimeout = RbdClient.DEFAULTS.timeoutSeconds();

    @Option(names = "--no-direct", order = 11,
            description = "open the image without O_DIRECT (through the host page cache); io_uring driver only")
    boolean noDirect;

    @Option(names = "--read-zeroes", order = 12,
            description = "null driver: reads return zeros (default: reads leave guest memory untouched, "
                    + "like qemu's null-co)")
    boolean readZeroes;

    @Option(names = "--poll-us", paramLabel = "N", order = 13,
            description = "adaptive polling: spin up to N microseconds for new requests and completions "
                    + "before sleeping (guest kicks suppressed meanwhile); the window grows while work "
                    + "arrives within it and shrinks to 0 when idle. 0 turns polling off. Default 50")
    int pollMicros = QueueTuning.DEFAULTS.pollMicros();

    @Option(names = "--poll-inflight-us", paramLabel = "N", order = 13,
            description = "the polling window's limit while the driver holds requests (a disk answers "
                    + "within a few hundred microseconds; catching the answer by spinning saves a "
                    + "wake-up per request). Used only while the process has a CPU per serving queue loop (spinning loops "
                    + "sharing a core delay each other). Never below --poll-us; --poll-us 0 turns it off too. Default 200")
    int pollInflightMicros = QueueTuning.DEFAULTS.pollInflightMicros();

    @Option(names = "--kick-on-ring", order = 14,
            description = "io_uring driver: wait for guest kicks on the driver's ring, so one "
                    + "io_uring_enter submits and sleeps (experimental; see docs/benchmarks.md)")
    boolean kickOnRing;

    @Option(names = "--submit-batch", paramLabel = "N", order = 14,
            description = "io_uring driver: enter the kernel as soon as N requests are prepared, rather "
                    + "than once per batch of guest requests (0: once per batch). Above 2 the kernel "
                    + "holds the batch's requests back from the disk until the last is built. Default 2")
    int submitBatch = DriverOptions.DEFAULT_SUBMIT_BATCH;

    @Option(names = "--read-only", order = 15,
            description = "export read-only: the guest sees VIRTIO_BLK_F_RO and every write is refused with an I/O error")
    boolean readOnly;

    @Option(names = "--no-writeback", order = 16, description = "advertise a write-through cache (CONFIG_WCE off)")
    boolean noWriteback;

    @Option(names = "--id", paramLabel = "NAME", order = 17,
            description = "device id for logs and the control socket (default: the disk file's name)")
    String id;

    @Option(names = "--vm", paramLabel = "NAME", order = 18,
            description = "VM name for logs (default: the policy's vm, else unknown)")
    String vm = ServeOptions.UNKNOWN_VM;

    @Option(names = "--policy", paramLabel = "FILE", order = 19,
            description = "the VM's module policy (docs/policy.md): modules, their jars' SHA-256, order, "
                    + "selectors, settings")
    Path policy;

    @Option(names = "--module-dir", paramLabel = "DIR", order = 20,
            description = "where module jars are (overrides the policy's module-dir; default: the policy file's directory)")
    Path moduleDir;

    @Option(names = "--control", paramLabel = "PATH", order = 21,
            description = "control socket (mode 0600) for 'vhost-blk ctl': list devices, "
                    + "enable/disable/move modules, counters (default: none)")
    Path control;

    @Option(names = "--metrics", paramLabel = "[ADDR:]PORT", converter = MetricsAddressConverter.class, order = 22,
            description = "serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR defaults to "
                    + "127.0.0.1; give another address to expose them beyond this host). Default: off")
    InetSocketAddress metrics;

    @Option(names = "--inject", paramLabel = "SPEC", converter = FaultSpecConverter.class, order = 23,
            description = "fault injection for tests and benchmarks (never in production): comma-separated "
                    + "latency=500us, eio=START-END (bytes, END exclusive; repeatable), eio-nth=N, "
                    + "enospc-after=BYTES, short=N (every Nth read/write reports a short transfer), "
                    + "power-cut or power-cut=N (after N writes every request fails; writes no "
                    + "completed flush covered are rolled back on exit), reorder=SEED (power cut: each "
                    + "such write survives at random). See docs/reliability.md")
    FaultSpec inject;

    /** The options checked together: required ones, ranges, and the combinations that make sense. */
    ServeOptions options() throws CommandUsageException {
        CommandKit.checkRange("--queues", queues, 1, 64);
        CommandKit.checkRange("--queue-size", queueSize, 64, 32768);
        CommandKit.checkRange("--poll-us", pollMicros, 0, 1_000_000);
        CommandKit.checkRange("--poll-inflight-us", pollInflightMicros, 0, 1_000_000);
        CommandKit.checkRange("--rbd-timeout", rbdTimeout, 1, 86_400);
        CommandKit.checkRange("--submit-batch", submitBatch, 0, 32768);
        if (socket == null) {
            throw new UsageException("--socket is required");
        }
        DriverKind kind = driver;
        if (disk == null && kind != DriverKind.RAM && kind != DriverKind.NULL) {
            throw new UsageException("--disk is required");
        }
        boolean rbdDisk = disk != null && RbdImageName.isRbd(disk.toString());
        if (kind == DriverKind.RBD || rbdDisk) {
            if (kind != DriverKind.RBD && kind != DriverKind.AUTO) {
                throw new UsageException("--disk " + disk + " is an RBD image; it needs --driver rbd, not " + name(kind));
            }
            kind = DriverKind.RBD;
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
        socketPath("--socket", socket);
        Path image = disk;
        if (image == null) {
            image = Path.of(name(kind));
        }
        if (control != null) {
            socketPath("--control", control);
            if (control.toAbsolutePath().normalize().equals(socket.toAbsolutePath().normalize())) {
                throw new UsageException("--control: must differ from --socket (" + socket + ")");
            }
        }
        if (moduleDir != null && policy == null) {
            throw new UsageException("--module-dir needs --policy (the policy names the jars and their digests)");
        }
        String deviceId = id;
        if (deviceId == null) {
            deviceId = kind == DriverKind.RBD ? RbdImageName.parse(image.toString()).image() : image.getFileName().toString();
        }
        if ((kind == DriverKind.RAM || kind == DriverKind.NULL) && size < 0) {
            throw new UsageException("--size is required with --driver " + name(kind));
        }
        return new ServeOptions(socket, image, size, queues, queueSize, readOnly, deviceId, vm, !noWriteback, kind,
                !noDirect, readZeroes, pollMicros, pollInflightMicros, policy, moduleDir, control, kickOnRing, metrics,
                new RbdClient(rbdConf, rbdId, rbdKeyring, rbdTimeout), inject, submitBatch);
    }

    private static String name(DriverKind kind) {
        return kind.name().toLowerCase(Locale.ROOT);
    }

    private static void socketPath(String option, Path path) throws UsageException {
        if (path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8).length > 107) {
            throw new UsageException(option + ": path '" + path + "' is longer than a Unix socket path may be (107 bytes)");
        }
    }

    /** {@code --driver}: the names {@link DriverKind#parse} knows. */
    static final class DriverKindConverter extends CommandKit.Converter<DriverKind> {
        DriverKindConverter() {
            super(DriverKind::parse);
        }
    }

    /** {@code --inject}: a {@link FaultSpec}. */
    static final class FaultSpecConverter extends CommandKit.Converter<FaultSpec> {
        FaultSpecConverter() {
            super(FaultSpec::parse);
        }
    }

    /** {@code --metrics}: {@code PORT} or {@code ADDR:PORT}. */
    static final class MetricsAddressConverter extends CommandKit.Converter<InetSocketAddress> {
        MetricsAddressConverter() {
            super(ServeOptions::metricsAddress);
        }
    }
}
