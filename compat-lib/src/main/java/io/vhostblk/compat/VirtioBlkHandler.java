package io.vhostblk.compat;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.drivers.KickAware;
import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.BlkConfig;
import io.vhostblk.virtio.BlkRequest;
import io.vhostblk.virtio.BlkRequestDecoder;
import io.vhostblk.virtio.DescriptorChain;
import io.vhostblk.virtio.DiscardSegment;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Everything virtio-blk about one queue, in one place: the features and config space a device
 * offers ({@link #offeredFeatures}, {@link #config}), decoding each walked chain with the negotiated
 * features, type dispatch, capacity and read-only checks, GET_ID, DISCARD / WRITE_ZEROES segments,
 * write-through FLUSH, the status byte and the used length. Requests in the driver's form go on to
 * the {@link HookRunner} (queue loop → this handler → hook runner → driver).
 *
 * <p>Guest request data and the status byte are reached only through each slot's {@link IoVector}s,
 * built from the decoded ranges of guest memory. Owned by the queue's event loop; one preallocated slot per
 * descriptor head, nothing allocated per request.
 */
public final class VirtioBlkHandler implements DriverCompletion, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VirtioBlkHandler.class.getName());
    /** Guest mistakes are logged at most this often per queue, so a hostile guest cannot flood the log. */
    private static final long LOG_EVERY_NANOS = 1_000_000_000L;

    /** Largest discard / write-zeroes range per request, in sectors (1 GiB). */
    public static final int MAX_RANGE_SECTORS = 1 << 21;
    /** Largest data segment the guest may put in one descriptor. */
    public static final int SIZE_MAX = 1 << 20;
    /** Physical block size advertised in the topology: the page and file-system block of the host. */
    public static final int PHYSICAL_BLOCK = 4096;
    /**
     * Data segments one request may carry. Linux builds indirect tables of up to seg_max + 2
     * entries, and a chain may not be longer than the queue, whose size the front-end picks after
     * reading the config (QEMU's default and smallest usual size is 128): 128 - 2 keeps every
     * chain a Linux guest builds within the limit the walker enforces.
     */
    public static final int SEG_MAX = 126;

    /** What a guest did wrong, and the status it gets for it: the one shape of a refused request. */
    enum GuestFault {
        /** Header, data direction or length not as the type requires. */
        MALFORMED(VirtioBlk.S_IOERR),
        /** Unknown type, a type whose feature was not negotiated, or reserved flags. */
        UNSUPPORTED(VirtioBlk.S_UNSUPP),
        /** Sectors beyond the capacity the guest was shown. */
        OUT_OF_RANGE(VirtioBlk.S_IOERR),
        /** A write, discard or write-zeroes on a read-only device. */
        READ_ONLY(VirtioBlk.S_IOERR);

        final byte status;

        GuestFault(byte status) {
            this.status = status;
        }
    }

    private final BlockDevice device;
    private final int queueIndex;
    private final long features;
    private final UsedSink sink;
    private final HookRunner runner;
    private final QueueStats stats;
    private final Slot[] slots;
    /** GET_ID serial and discard segment staging: guest bytes are copied once, then read. */
    private final MemorySegment scratch = Arena.ofAuto().allocate(32, 8);
    private final DiscardSegment segment = new DiscardSegment();
    private int guestInFlight;
    private long lastErrorLog;
    private long guestErrors;

    /** Per-head state of a guest request: the chain, its decoding, its data and the driver request. */
    private static final class Slot {
        final DescriptorChain chain;
        final BlkRequest blk;
        final IoVector data;
        /** The status byte, written through the same checked path as the data. */
        final IoVector status = new IoVector(1);
        final BlockRequest request;
        boolean busy;
        boolean flushingAfterWrite;
        int writtenOnSuccess;
        /** When the request started, for its latency ({@link QueueStats#startStamp}). */
        long started;

        Slot(int head, int maxSegments, BlockDevice device, int queueIndex) {
            chain = new DescriptorChain(maxSegments);
            blk = new BlkRequest(maxSegments);
            data = new IoVector(maxSegments);
            request = new BlockRequest(head, device.id(), queueIndex);
        }
    }

    /** A handler for a queue whose driver negotiated every feature the device offers (tests, benchmarks). */
    public VirtioBlkHandler(BlockDevice device, int queueIndex, int queueSize, int maxSegments, UsedSink sink)
            throws DriverException {
        this(device, queueIndex, queueSize, maxSegments, offeredFeatures(device), sink);
    }

    /**
     * @param queueSize          the virtqueue size (one slot per possible head)
     * @param maxSegments        descriptor segments a chain may flatten to
     * @param negotiatedFeatures the feature bits the driver acknowledged: request types of features not
     *                           among them are answered UNSUPP
     */
    public VirtioBlkHandler(BlockDevice device, int queueIndex, int queueSize, int maxSegments, long negotiatedFeatures,
                            UsedSink sink) throws DriverException {
        this.device = device;
        this.queueIndex = queueIndex;
        this.features = negotiatedFeatures;
        this.sink = sink;
        this.slots = new Slot[queueSize];
        for (int i = 0; i < queueSize; i++) {
            slots[i] = new Slot(i, maxSegments, device, queueIndex);
        }
        this.runner = new HookRunner(device, queueIndex, queueSize);
        this.stats = new QueueStats(queueIndex);
        device.queueStarted(stats);
    }

    // ---- the device model: features and config space ----

    /** The virtio-blk feature bits a device offers. */
    public static long offeredFeatures(BlockDevice device) {
        long f = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | VirtioBlk.bit(VirtioBlk.F_RING_PACKED) | VirtioBlk.bit(VirtioBlk.F_RING_INDIRECT_DESC)
                | VirtioBlk.bit(VirtioBlk.F_RING_EVENT_IDX) | VirtioBlk.bit(VirtioBlk.F_SIZE_MAX)
                | VirtioBlk.bit(VirtioBlk.F_SEG_MAX) | VirtioBlk.bit(VirtioBlk.F_BLK_SIZE) | VirtioBlk.bit(VirtioBlk.F_TOPOLOGY)
                | VirtioBlk.bit(VirtioBlk.F_FLUSH) | VirtioBlk.bit(VirtioBlk.F_CONFIG_WCE) | VirtioBlk.bit(VirtioBlk.F_MQ);
        if (device.readOnly()) {
            f |= VirtioBlk.bit(VirtioBlk.F_RO);
        } else {
            if (device.driver().supportsDiscard()) {
                f |= VirtioBlk.bit(VirtioBlk.F_DISCARD);
            }
            if (device.driver().supportsWriteZeroes()) {
                f |= VirtioBlk.bit(VirtioBlk.F_WRITE_ZEROES);
            }
        }
        return f;
    }

    /** The config space of a device with {@code queues} queues; fixes its geometry (a guest is about to see it). */
    public static byte[] config(BlockDevice device, int queues) {
        device.geometryFixed();
        int block = device.logicalBlockSize();
        return BlkConfig.builder()
                .capacitySectors(device.capacitySectors())
                .sizeMax(SIZE_MAX)
                .segMax(SEG_MAX)
                .blkSize(block)
                .topology(physicalBlockExponent(block), 0, Math.max(1, PHYSICAL_BLOCK / block), 0)
                .writeback(device.writeback())
                .numQueues(queues)
                .discard(MAX_RANGE_SECTORS, 1, 8)
                .writeZeroes(MAX_RANGE_SECTORS, 1, true)
                .build()
                .toBytes();
    }

    /**
     * A driver's write into the config space: only the 1-byte {@code writeback} field (0 or 1) is
     * writable (the guest switching its cache mode). Returns false for anything else.
     */
    public static boolean writeConfig(BlockDevice device, int offset, byte[] data) {
        if (offset != BlkConfig.WRITEBACK_OFFSET || data.length != 1 || (data[0] != 0 && data[0] != 1)) {
            return false;
        }
        device.writeback(data[0] == 1);
        LOG.log(Level.INFO, device.label() + ": guest set the cache to " + (data[0] == 1 ? "writeback" : "write-through"));
        return true;
    }

    /** log2(physical / logical) blocks, as virtio-blk's topology wants it; 0 when logical ≥ physical. */
    public static int physicalBlockExponent(int logicalBlockSize) {
        return logicalBlockSize >= PHYSICAL_BLOCK ? 0 : Integer.numberOfTrailingZeros(PHYSICAL_BLOCK / logicalBlockSize);
    }

    // ---- requests ----

    /** The chain holder for {@code head}, which the virtqueue walker fills before {@link #submit}. */
    public DescriptorChain chainFor(int head) {
        return slots[head].chain;
    }

    /** Whether the request at {@code head} is still being served (a guest reusing it is broken). */
    public boolean busy(int head) {
        return slots[head].busy;
    }

    /** Decodes the walked chain at {@code head} and starts it; the result arrives at the {@link UsedSink}. */
    public void submit(int head) {
        Slot s = slots[head];
        s.busy = true;
        s.flushingAfterWrite = false;
        s.started = QueueStats.startStamp();
        guestInFlight++;
        stats.inFlight(guestInFlight);
        BlkRequest blk = s.blk;
        int decoded = BlkRequestDecoder.decode(s.chain, blk, features);
        if (decoded == BlkRequestDecoder.NO_STATUS) {
            guestError(head, "request has no writable status byte");
            release(s);
            stats.answered(QueueStats.Op.OTHER, VirtioBlk.S_IOERR, 0, s.started, guestInFlight);
            sink.used(head, 0);
            return;
        }
        s.status.wrap(blk.statusRegion(), blk.statusOffset(), 1, true);
        if (decoded != VirtioBlk.S_OK) {
            refuse(s, decoded == VirtioBlk.S_UNSUPP ? GuestFault.UNSUPPORTED : GuestFault.MALFORMED, blk.error());
            return;
        }
        if (!fillData(s)) {
            return;
        }
        switch (blk.type()) {
            case VirtioBlk.T_IN -> readWrite(s, BlockOp.READ);
            case VirtioBlk.T_OUT -> readWrite(s, BlockOp.WRITE);
            case VirtioBlk.T_FLUSH -> start(s, s.request.set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false), 0);
            case VirtioBlk.T_GET_ID -> getId(s);
            case VirtioBlk.T_DISCARD -> rangeOp(s, BlockOp.DISCARD);
            case VirtioBlk.T_WRITE_ZEROES -> rangeOp(s, BlockOp.WRITE_ZEROES);
            default -> refuse(s, GuestFault.UNSUPPORTED, VirtioBlk.typeName(blk.type()) + " is not served");
        }
    }

    /** Builds the slot's IoVector over the decoded data ranges; each is checked against its region again. */
    private boolean fillData(Slot s) {
        BlkRequest blk = s.blk;
        IoVector data = s.data.clear(blk.dataWritable());
        try {
            for (int i = 0; i < blk.dataSegmentCount(); i++) {
                data.add(blk.dataRegion(i), blk.dataRegionOffset(i), blk.dataSegmentLength(i));
            }
            return true;
        } catch (RuntimeException e) {
            // The walker checked every range already: reaching this is a bug beneath, not the guest's doing.
            LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + " head=" + s.request.slot()
                    + ": request data refused", e);
            answer(s, VirtioBlk.S_IOERR, 0);
            return false;
        }
    }

    private void readWrite(Slot s, BlockOp op) {
        BlkRequest blk = s.blk;
        long bytes = blk.dataLength();
        if (!VirtioBlk.withinCapacity(blk.sector(), bytes, device.capacitySectors())) {
            refuse(s, GuestFault.OUT_OF_RANGE, op + " of " + bytes + " bytes at sector " + blk.sector()
                    + " is beyond the capacity of " + device.capacitySectors() + " sectors");
            return;
        }
        if (op == BlockOp.WRITE && device.readOnly()) {
            refuse(s, GuestFault.READ_ONLY, "write to a read-only device");
            return;
        }
        start(s, s.request.set(op, blk.sector() << 9, bytes, s.data, false), op == BlockOp.READ ? (int) bytes : 0);
    }

    private void getId(Slot s) {
        byte[] serial = device.serial();
        int n = (int) Math.min(s.data.length(), VirtioBlk.ID_BYTES);
        for (int k = 0; k < n; k++) {
            scratch.set(ValueLayout.JAVA_BYTE, k, k < serial.length ? serial[k] : 0);
        }
        s.data.copyFrom(scratch, 0, 0, n);
        answer(s, VirtioBlk.S_OK, n);
    }

    /** DISCARD and WRITE_ZEROES: one {sector, num_sectors, flags} segment (we advertise max_*_seg = 1). */
    private void rangeOp(Slot s, BlockOp op) {
        long bytes = s.data.length();
        if (bytes != VirtioBlk.RANGE_SEGMENT_BYTES) {
            refuse(s, bytes % VirtioBlk.RANGE_SEGMENT_BYTES == 0 ? GuestFault.UNSUPPORTED : GuestFault.MALFORMED,
                    op + " with " + bytes + " bytes of segments (one 16-byte segment expected)");
            return;
        }
        s.data.copyTo(0, scratch, 0, VirtioBlk.RANGE_SEGMENT_BYTES);
        DiscardSegment seg = segment.read(scratch, 0);
        if (seg.flagsStatus(s.blk.type()) != VirtioBlk.S_OK) {
            // The spec reserves the other bits, and UNMAP is meaningless on DISCARD: refuse both.
            refuse(s, GuestFault.UNSUPPORTED, op + " with flags 0x" + Integer.toHexString(seg.flags()));
            return;
        }
        if (device.readOnly()) {
            refuse(s, GuestFault.READ_ONLY, op + " on a read-only device");
            return;
        }
        long sector = seg.sector();
        long sectors = seg.numSectors();
        if (!VirtioBlk.withinCapacity(sector, sectors << 9, device.capacitySectors())) {
            refuse(s, GuestFault.OUT_OF_RANGE, op + " of " + sectors + " sectors at sector " + sector + " is beyond the capacity");
            return;
        }
        boolean supported = op == BlockOp.DISCARD ? device.driver().supportsDiscard() : device.driver().supportsWriteZeroes();
        if (!supported) {
            answer(s, VirtioBlk.S_UNSUPP, 0);
            return;
        }
        boolean unmap = (seg.flags() & VirtioBlk.RANGE_FLAG_UNMAP) != 0;
        start(s, s.request.set(op, sector << 9, sectors << 9, IoVector.NONE, unmap), 0);
    }

    private void start(Slot s, BlockRequest r, int writtenOnSuccess) {
        s.writtenOnSuccess = writtenOnSuccess;
        runner.submit(r, this);
    }

    /** A guest request came back through the hooks. */
    @Override
    public void complete(BlockRequest r, long result) {
        Slot s = slots[r.slot()];
        if (writeThroughFlush(s, result)) {
            return;
        }
        if (result < 0) {
            logDriverError(r, result);
            answer(s, VirtioBlk.S_IOERR, 0);
        } else {
            answer(s, VirtioBlk.S_OK, s.writtenOnSuccess);
        }
    }

    /**
     * With the guest's cache set to write-through (virtio-blk {@code writeback} = 0), a write is
     * acknowledged only once it is durable: when the guest's write has come back through the
     * hooks, the slot goes down the whole stack again as a FLUSH (so modules make their metadata
     * durable too). Returns whether the request went down again.
     */
    private boolean writeThroughFlush(Slot s, long result) {
        if (s.flushingAfterWrite) {
            s.flushingAfterWrite = false;
            return false;
        }
        if (s.blk.type() != VirtioBlk.T_OUT || result < 0 || device.writeback()) {
            return false;
        }
        s.flushingAfterWrite = true;
        start(s, s.request.set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false), 0);
        return true;
    }

    /** Answers a request the guest got wrong: logged (rate-limited), its status written, the head returned. */
    private void refuse(Slot s, GuestFault fault, String detail) {
        guestError(s.request.slot(), fault + ": " + detail);
        answer(s, fault.status, 0);
    }

    /** Writes the status byte (through its IoVector) and hands the head to the used ring. */
    private void answer(Slot s, byte status, int dataWritten) {
        s.status.setByte(0, status);
        release(s);
        QueueStats.Op op = opOf(s.blk.type());
        stats.answered(op, status, op == QueueStats.Op.WRITE ? s.data.length() : dataWritten, s.started, guestInFlight);
        sink.used(s.request.slot(), dataWritten + 1);
    }

    private static QueueStats.Op opOf(int type) {
        return switch (type) {
            case VirtioBlk.T_IN -> QueueStats.Op.READ;
            case VirtioBlk.T_OUT -> QueueStats.Op.WRITE;
            case VirtioBlk.T_FLUSH -> QueueStats.Op.FLUSH;
            case VirtioBlk.T_DISCARD -> QueueStats.Op.DISCARD;
            case VirtioBlk.T_WRITE_ZEROES -> QueueStats.Op.WRITE_ZEROES;
            case VirtioBlk.T_GET_ID -> QueueStats.Op.GET_ID;
            default -> QueueStats.Op.OTHER;
        };
    }

    private void release(Slot s) {
        s.busy = false;
        guestInFlight--;
    }

    private void guestError(int head, String what) {
        guestErrors++;
        long now = System.nanoTime();
        if (now - lastErrorLog >= LOG_EVERY_NANOS) {
            lastErrorLog = now;
            LOG.log(Level.WARNING, device.label() + " queue=" + queueIndex + " head=" + head + ": " + what
                    + " (guest errors on this queue so far: " + guestErrors + ")");
        }
    }

    private void logDriverError(BlockRequest r, long result) {
        long now = System.nanoTime();
        if (now - lastErrorLog >= LOG_EVERY_NANOS) {
            lastErrorLog = now;
            LOG.log(Level.WARNING, device.label() + " queue=" + queueIndex + ": " + r + " failed: "
                    + Errno.describe((int) -result));
        }
    }

    // ---- the queue loop's side ----

    /** Hands queued driver requests to the device: once per batch. */
    public void flushBatch() {
        runner.flushBatch();
    }

    /** Collects finished driver requests and runs tasks modules posted, without blocking; returns how many. */
    public int reap() {
        return runner.reap();
    }

    /** The driver's completion fd to wait on beside the kick, or -1. */
    public int completionFd() {
        return runner.completionFd();
    }

    /** Readable when a module posted work for this queue's event loop; see {@link #mailboxSeen()}. */
    public int mailboxFd() {
        return runner.mailboxFd();
    }

    /**
     * The driver queue when it can watch the kick fd on its own ring (io_uring), so the loop waits
     * in one place for kicks and completions; null otherwise.
     */
    public KickAware kickAware() {
        return runner.kickAware();
    }

    /** An eventfd the loop waits on, signalled as well when a module posts work (see {@link #kickAware()}). */
    public void alsoSignal(EventFd doorbell) {
        runner.alsoSignal(doorbell);
    }

    /** The loop saw the mailbox fd readable: resets it (the tasks run at the next {@link #reap()}). */
    public void mailboxSeen() {
        runner.mailboxSeen();
    }

    /** Requests started and not yet finished (guest requests and modules' own). */
    public int inFlight() {
        return guestInFlight + runner.moduleInFlight();
    }

    public BlockDevice device() {
        return device;
    }

    /** What this queue has served (for metrics). */
    public QueueStats stats() {
        return stats;
    }

    @Override
    public void close() {
        device.queueStopped(stats);
        runner.close();
    }
}
