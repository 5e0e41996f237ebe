package io.vhostblk.compat;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.virtio.BlkRequest;
import io.vhostblk.virtio.BlkRequestDecoder;
import io.vhostblk.virtio.DescriptorChain;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.System.Logger.Level;

/**
 * The compat-lib for one virtqueue: turns decoded virtio-blk requests into driver requests and
 * runs them through the two interception points — ① {@link #preCall} right before the driver,
 * ② {@link #complete} when the driver's result is known and nothing has reached the guest yet.
 * Owned by the queue's event loop; requests live in preallocated slots indexed by descriptor head.
 */
public final class QueueContext implements DriverCompletion, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(QueueContext.class.getName());
    /** Guest mistakes are logged at most this often per queue, so a hostile guest cannot flood the log. */
    private static final long LOG_EVERY_NANOS = 1_000_000_000L;

    private final BlockDevice device;
    private final int queueIndex;
    private final UsedSink sink;
    private final DriverQueue driverQueue;
    private final Slot[] slots;
    private int inFlight;
    private long lastGuestErrorLog;
    private long guestErrors;

    /** Per-head state: the chain, its virtio-blk decoding, the driver request and the hook chain it started on. */
    private static final class Slot {
        final DescriptorChain chain;
        final BlkRequest blk;
        final BlockRequest request;
        HookChain hooks;
        int hookDepth;
        boolean busy;
        boolean flushingAfterWrite;
        int writtenOnSuccess;

        Slot(int head, int maxSegments, BlockDevice device, int queueIndex) {
            chain = new DescriptorChain(maxSegments);
            blk = new BlkRequest(maxSegments);
            request = new BlockRequest(head, device.id(), queueIndex);
        }
    }

    /**
     * @param queueSize   the virtqueue size (one slot per possible head)
     * @param maxSegments descriptor segments a chain may flatten to
     */
    public QueueContext(BlockDevice device, int queueIndex, int queueSize, int maxSegments, UsedSink sink)
            throws DriverException {
        this.device = device;
        this.queueIndex = queueIndex;
        this.sink = sink;
        this.slots = new Slot[queueSize];
        for (int i = 0; i < queueSize; i++) {
            slots[i] = new Slot(i, maxSegments, device, queueIndex);
        }
        this.driverQueue = device.driver().openQueue(queueIndex, this);
    }

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
        inFlight++;
        int decoded = BlkRequestDecoder.decode(s.chain, s.blk);
        if (decoded == BlkRequestDecoder.NO_STATUS) {
            guestError(head, "request has no writable status byte");
            finishUnanswered(s);
            return;
        }
        if (decoded != VirtioBlk.S_OK) {
            guestError(head, "malformed request (" + s.blk.error() + ")");
            finish(s, decoded, 0);
            return;
        }
        BlkRequest blk = s.blk;
        switch (blk.type()) {
            case VirtioBlk.T_IN -> readWrite(s, BlockOp.READ);
            case VirtioBlk.T_OUT -> readWrite(s, BlockOp.WRITE);
            case VirtioBlk.T_FLUSH -> start(s, s.request.set(BlockOp.FLUSH, 0, 0, blk.iov(), 0, false), 0);
            case VirtioBlk.T_GET_ID -> getId(s);
            case VirtioBlk.T_DISCARD -> rangeOp(s, BlockOp.DISCARD);
            case VirtioBlk.T_WRITE_ZEROES -> rangeOp(s, BlockOp.WRITE_ZEROES);
            default -> finish(s, VirtioBlk.S_UNSUPP, 0);
        }
    }

    private void readWrite(Slot s, BlockOp op) {
        BlkRequest blk = s.blk;
        long bytes = blk.dataLength();
        if (!VirtioBlk.withinCapacity(blk.sector(), bytes, device.capacitySectors())) {
            guestError(s.request.slot(), op + " of " + bytes + " bytes at sector " + blk.sector()
                    + " is beyond the capacity of " + device.capacitySectors() + " sectors");
            finish(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        if (op == BlockOp.WRITE && device.readOnly()) {
            finish(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        s.request.set(op, blk.sector() << 9, bytes, blk.iov(), blk.iovCount(), false);
        start(s, s.request, op == BlockOp.READ ? (int) bytes : 0);
    }

    private void getId(Slot s) {
        BlkRequest blk = s.blk;
        byte[] serial = device.serial();
        int n = (int) Math.min(blk.dataLength(), VirtioBlk.ID_BYTES);
        byte[] id = new byte[n];
        System.arraycopy(serial, 0, id, 0, Math.min(serial.length, n));
        GuestBytes.write(blk.iov(), blk.iovCount(), id, n);
        finish(s, VirtioBlk.S_OK, n);
    }

    /** DISCARD and WRITE_ZEROES: one {sector, num_sectors, flags} segment (we advertise max_*_seg = 1). */
    private void rangeOp(Slot s, BlockOp op) {
        BlkRequest blk = s.blk;
        if (blk.dataLength() != VirtioBlk.RANGE_SEGMENT_BYTES) {
            guestError(s.request.slot(), op + " with " + blk.dataLength() + " bytes of segments (one 16-byte segment expected)");
            finish(s, blk.dataLength() % VirtioBlk.RANGE_SEGMENT_BYTES == 0 ? VirtioBlk.S_UNSUPP : VirtioBlk.S_IOERR, 0);
            return;
        }
        long sector = GuestBytes.littleEndian(blk.iov(), blk.iovCount(), 0, 8);
        long sectors = GuestBytes.littleEndian(blk.iov(), blk.iovCount(), 8, 4);
        long flags = GuestBytes.littleEndian(blk.iov(), blk.iovCount(), 12, 4);
        boolean unmap = (flags & VirtioBlk.RANGE_FLAG_UNMAP) != 0;
        if ((flags & ~VirtioBlk.RANGE_FLAG_UNMAP) != 0 || (op == BlockOp.DISCARD && unmap)) {
            // The spec reserves the other bits, and UNMAP is meaningless on DISCARD: refuse both.
            finish(s, VirtioBlk.S_UNSUPP, 0);
            return;
        }
        if (device.readOnly()) {
            finish(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        if (!VirtioBlk.withinCapacity(sector, sectors << 9, device.capacitySectors())) {
            guestError(s.request.slot(), op + " of " + sectors + " sectors at sector " + sector + " is beyond the capacity");
            finish(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        boolean supported = op == BlockOp.DISCARD ? device.driver().supportsDiscard() : device.driver().supportsWriteZeroes();
        if (!supported) {
            finish(s, VirtioBlk.S_UNSUPP, 0);
            return;
        }
        start(s, s.request.set(op, sector << 9, sectors << 9, blk.iov(), 0, unmap), 0);
    }

    /** Runs point ① and hands the request to the driver unless a hook answered it. */
    private void start(Slot s, BlockRequest r, int writtenOnSuccess) {
        s.writtenOnSuccess = writtenOnSuccess;
        HookChain hooks = device.hooks();
        s.hooks = hooks;
        if (hooks != null && !preCall(s, hooks, r)) {
            return;
        }
        driverQueue.submit(r);
    }

    /** Point ①: returns whether the driver is to be called. */
    private boolean preCall(Slot s, HookChain hooks, BlockRequest r) {
        int depth;
        try {
            depth = hooks.beforeDriver(r);
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + ": a hook failed on " + r + "; failing the request", e);
            s.hookDepth = 0;
            complete(r, -io.vhostblk.linux.Errno.EIO);
            return false;
        }
        s.hookDepth = depth;
        if (depth < hooks.size()) {
            complete(r, r.result());
            return false;
        }
        return true;
    }

    /** Point ②: the driver (or a hook) is done with {@code r}; the hooks that passed it on see the result first. */
    @Override
    public void complete(BlockRequest r, long result) {
        Slot s = slots[r.slot()];
        if (writeThroughFlush(s, r, result)) {
            return;
        }
        long res = result;
        HookChain hooks = s.hooks;
        if (hooks != null) {
            try {
                res = hooks.afterDriver(r, res, s.hookDepth);
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + ": a completion hook failed on " + r, e);
                res = -io.vhostblk.linux.Errno.EIO;
            }
            s.hooks = null;
        }
        if (res < 0) {
            logDriverError(r, res);
            finish(s, VirtioBlk.S_IOERR, 0);
        } else {
            finish(s, VirtioBlk.S_OK, s.writtenOnSuccess);
        }
    }

    /**
     * With the guest's cache set to write-through (virtio-blk {@code writeback} = 0), a write is
     * acknowledged only once it is durable: the same request goes to the driver again as a FLUSH.
     * Returns whether the request went back to the driver.
     */
    private boolean writeThroughFlush(Slot s, BlockRequest r, long result) {
        if (s.flushingAfterWrite) {
            s.flushingAfterWrite = false;
            r.set(BlockOp.WRITE, r.offset(), r.length(), r.iov(), r.iovCount(), false);
            return false;
        }
        if (r.op() != BlockOp.WRITE || result < 0 || device.writeback()) {
            return false;
        }
        s.flushingAfterWrite = true;
        long offset = r.offset();
        long length = r.length();
        int count = r.iovCount();
        driverQueue.submit(r.set(BlockOp.FLUSH, offset, length, r.iov(), count, false));
        return true;
    }

    /** Writes the status byte and hands the head to the used ring. */
    private void finish(Slot s, int status, int dataWritten) {
        GuestBytes.putByte(s.blk.statusAddress(), (byte) status);
        release(s);
        sink.used(s.request.slot(), dataWritten + 1);
    }

    /** A request with nowhere to put a status still goes back to the guest, with nothing written. */
    private void finishUnanswered(Slot s) {
        release(s);
        sink.used(s.request.slot(), 0);
    }

    private void release(Slot s) {
        s.busy = false;
        inFlight--;
    }

    /** Hands queued driver requests to the device: once per batch. */
    public void flushBatch() {
        driverQueue.flushBatch();
    }

    /** Collects finished driver requests without blocking; returns how many. */
    public int reap() {
        return driverQueue.reap();
    }

    /** The driver's completion fd to wait on beside the kick, or -1. */
    public int completionFd() {
        return driverQueue.completionFd();
    }

    /** Guest requests started and not yet handed back. */
    public int inFlight() {
        return inFlight;
    }

    public BlockDevice device() {
        return device;
    }

    private void guestError(int head, String what) {
        guestErrors++;
        long now = System.nanoTime();
        if (now - lastGuestErrorLog >= LOG_EVERY_NANOS) {
            lastGuestErrorLog = now;
            LOG.log(Level.WARNING, device.label() + " queue=" + queueIndex + " head=" + head + ": " + what
                    + " (guest errors on this queue so far: " + guestErrors + ")");
        }
    }

    private void logDriverError(BlockRequest r, long result) {
        long now = System.nanoTime();
        if (now - lastGuestErrorLog >= LOG_EVERY_NANOS) {
            lastGuestErrorLog = now;
            LOG.log(Level.WARNING, device.label() + " queue=" + queueIndex + ": " + r + " failed: "
                    + io.vhostblk.linux.Errno.describe((int) -result));
        }
    }

    @Override
    public void close() {
        driverQueue.close();
    }
}
