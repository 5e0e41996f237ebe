package io.vhostblk.compat;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.drivers.KickAware;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.HookCounters;
import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.virtio.BlkRequest;
import io.vhostblk.virtio.BlkRequestDecoder;
import io.vhostblk.virtio.DescriptorChain;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The compat-lib for one virtqueue: turns decoded virtio-blk requests into driver requests and
 * runs them through the two interception points — ① {@link #preCall} right before the driver,
 * ② {@link #finish} when the driver's result is known and nothing has reached the guest yet.
 * Owned by the queue's event loop; guest requests live in preallocated slots indexed by
 * descriptor head, modules' own requests in slots after those.
 */
public final class QueueContext implements DriverCompletion, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(QueueContext.class.getName());
    /** Guest mistakes are logged at most this often per queue, so a hostile guest cannot flood the log. */
    private static final long LOG_EVERY_NANOS = 1_000_000_000L;

    private final BlockDevice device;
    private final DeviceInfo deviceInfo;
    private final int queueIndex;
    private final UsedSink sink;
    private final DriverQueue driverQueue;
    private final GuestSlot[] slots;
    private final List<ModuleSlot> moduleSlots = new ArrayList<>();
    private final Map<ChainEntry, HookState> opened = new IdentityHashMap<>();
    private final ConcurrentLinkedQueue<Runnable> mailbox = new ConcurrentLinkedQueue<>();
    private final EventFd mailboxSignal;
    private volatile EventFd loopDoorbell;
    private QueueHooks queueHooks;
    private int inFlight;
    private long lastErrorLog;
    private long guestErrors;

    /** A request on its way through the hooks: where in the chain it started and how deep it got. */
    private abstract static class Pending {
        final BlockRequest request;
        QueueHooks hooks;
        int start;
        int depth;

        Pending(BlockRequest request) {
            this.request = request;
        }
    }

    /** Per-head state of a guest request: the chain, its virtio-blk decoding and the driver request. */
    private static final class GuestSlot extends Pending {
        final DescriptorChain chain;
        final BlkRequest blk;
        boolean busy;
        boolean flushingAfterWrite;
        int writtenOnSuccess;

        GuestSlot(int head, int maxSegments, BlockDevice device, int queueIndex) {
            super(new BlockRequest(head, device.id(), queueIndex));
            chain = new DescriptorChain(maxSegments);
            blk = new BlkRequest(maxSegments);
        }
    }

    /** A module's own request to the layers beneath it, and who gets its result. */
    private static final class ModuleSlot extends Pending {
        final ChainEntry owner;
        DriverCompletion done;

        ModuleSlot(BlockRequest request, ChainEntry owner) {
            super(request);
            this.owner = owner;
        }
    }

    /** A module's hook on this queue and this queue's counters for it. */
    private record HookState(BlockHook hook, HookCounters counters) {
    }

    /**
     * @param queueSize   the virtqueue size (one slot per possible head)
     * @param maxSegments descriptor segments a chain may flatten to
     */
    public QueueContext(BlockDevice device, int queueIndex, int queueSize, int maxSegments, UsedSink sink)
            throws DriverException {
        this.device = device;
        this.deviceInfo = device.info();
        this.queueIndex = queueIndex;
        this.sink = sink;
        this.slots = new GuestSlot[queueSize];
        for (int i = 0; i < queueSize; i++) {
            slots[i] = new GuestSlot(i, maxSegments, device, queueIndex);
        }
        try {
            this.mailboxSignal = EventFd.create(true);
        } catch (LinuxException e) {
            throw new DriverException(device.label() + " queue=" + queueIndex + ": cannot create the module mailbox eventfd", e);
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
        GuestSlot s = slots[head];
        s.busy = true;
        s.flushingAfterWrite = false;
        inFlight++;
        int decoded = BlkRequestDecoder.decode(s.chain, s.blk);
        if (decoded == BlkRequestDecoder.NO_STATUS) {
            guestError(head, "request has no writable status byte");
            release(s);
            sink.used(head, 0);
            return;
        }
        if (decoded != VirtioBlk.S_OK) {
            guestError(head, "malformed request (" + s.blk.error() + ")");
            answer(s, decoded, 0);
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
            default -> answer(s, VirtioBlk.S_UNSUPP, 0);
        }
    }

    private void readWrite(GuestSlot s, BlockOp op) {
        BlkRequest blk = s.blk;
        long bytes = blk.dataLength();
        if (!VirtioBlk.withinCapacity(blk.sector(), bytes, device.capacitySectors())) {
            guestError(s.request.slot(), op + " of " + bytes + " bytes at sector " + blk.sector()
                    + " is beyond the capacity of " + device.capacitySectors() + " sectors");
            answer(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        if (op == BlockOp.WRITE && device.readOnly()) {
            answer(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        s.request.set(op, blk.sector() << 9, bytes, blk.iov(), blk.iovCount(), false);
        start(s, s.request, op == BlockOp.READ ? (int) bytes : 0);
    }

    private void getId(GuestSlot s) {
        BlkRequest blk = s.blk;
        byte[] serial = device.serial();
        int n = (int) Math.min(blk.dataLength(), VirtioBlk.ID_BYTES);
        byte[] id = new byte[n];
        System.arraycopy(serial, 0, id, 0, Math.min(serial.length, n));
        GuestBytes.write(blk.iov(), blk.iovCount(), id, n);
        answer(s, VirtioBlk.S_OK, n);
    }

    /** DISCARD and WRITE_ZEROES: one {sector, num_sectors, flags} segment (we advertise max_*_seg = 1). */
    private void rangeOp(GuestSlot s, BlockOp op) {
        BlkRequest blk = s.blk;
        if (blk.dataLength() != VirtioBlk.RANGE_SEGMENT_BYTES) {
            guestError(s.request.slot(), op + " with " + blk.dataLength() + " bytes of segments (one 16-byte segment expected)");
            answer(s, blk.dataLength() % VirtioBlk.RANGE_SEGMENT_BYTES == 0 ? VirtioBlk.S_UNSUPP : VirtioBlk.S_IOERR, 0);
            return;
        }
        long sector = GuestBytes.littleEndian(blk.iov(), blk.iovCount(), 0, 8);
        long sectors = GuestBytes.littleEndian(blk.iov(), blk.iovCount(), 8, 4);
        long flags = GuestBytes.littleEndian(blk.iov(), blk.iovCount(), 12, 4);
        boolean unmap = (flags & VirtioBlk.RANGE_FLAG_UNMAP) != 0;
        if ((flags & ~VirtioBlk.RANGE_FLAG_UNMAP) != 0 || (op == BlockOp.DISCARD && unmap)) {
            // The spec reserves the other bits, and UNMAP is meaningless on DISCARD: refuse both.
            answer(s, VirtioBlk.S_UNSUPP, 0);
            return;
        }
        if (device.readOnly()) {
            answer(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        if (!VirtioBlk.withinCapacity(sector, sectors << 9, device.capacitySectors())) {
            guestError(s.request.slot(), op + " of " + sectors + " sectors at sector " + sector + " is beyond the capacity");
            answer(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        boolean supported = op == BlockOp.DISCARD ? device.driver().supportsDiscard() : device.driver().supportsWriteZeroes();
        if (!supported) {
            answer(s, VirtioBlk.S_UNSUPP, 0);
            return;
        }
        start(s, s.request.set(op, sector << 9, sectors << 9, blk.iov(), 0, unmap), 0);
    }

    /** Sends a guest request down: through the device's hooks when it has any, then the driver. */
    private void start(GuestSlot s, BlockRequest r, int writtenOnSuccess) {
        s.writtenOnSuccess = writtenOnSuccess;
        HookChain chain = device.hooks();
        if (chain == null) {
            s.hooks = null;
            driverQueue.submit(r);
            return;
        }
        if (device.failure() != null) {
            // Only a device with modules can fail closed, so the check costs nothing without them.
            answer(s, VirtioBlk.S_IOERR, 0);
            return;
        }
        QueueHooks qh = queueHooks(chain);
        s.hooks = qh;
        s.start = 0;
        if (preCall(s, qh, 0)) {
            driverQueue.submit(r);
        }
    }

    /**
     * Point ①: runs the pre-call hooks from {@code from} on. Returns whether the driver is to be
     * called; otherwise a hook answered, took over, or failed the request.
     */
    private boolean preCall(Pending p, QueueHooks qh, int from) {
        BlockRequest r = p.request;
        for (int i = from; i < qh.size(); i++) {
            HookCounters c = qh.counters[i];
            c.seen++;
            if (r.op() == BlockOp.READ || r.op() == BlockOp.WRITE) {
                c.bytes += r.length();
            }
            HookAction action;
            // Set before the call: a hook may complete the request from inside it (a synchronous
            // driver answering its submitBelow, say), and only the hooks above must see that.
            p.depth = i;
            try {
                action = qh.hooks[i].beforeDriver(r);
            } catch (RuntimeException | LinkageError | StackOverflowError e) {
                c.errors++;
                moduleFailed(qh.entries[i], "pre-call hook threw on " + r, e);
                p.depth = i;
                finish(p, -Errno.EIO);
                return false;
            }
            switch (action) {
                case PASS -> c.passed++;
                case COMPLETE -> {
                    c.completed++;
                    if (r.result() < 0) {
                        c.errors++;
                    }
                    finish(p, r.result());
                    return false;
                }
                case TAKE_OVER -> {
                    c.completed++;
                    return false;
                }
            }
        }
        p.depth = qh.size();
        return true;
    }

    /** The device's chain as this queue runs it; rebuilt (opening new modules' queue hooks) when the chain changed. */
    private QueueHooks queueHooks(HookChain chain) {
        QueueHooks qh = queueHooks;
        if (qh != null && qh.chain == chain) {
            return qh;
        }
        List<ChainEntry> entries = chain.entries();
        BlockHook[] hooks = new BlockHook[entries.size()];
        HookCounters[] counters = new HookCounters[entries.size()];
        for (int i = 0; i < hooks.length; i++) {
            ChainEntry e = entries.get(i);
            HookState st = opened.get(e);
            if (st == null) {
                st = new HookState(e.instance().openQueue(new ModuleContext(e)), e.newQueueCounters());
                opened.put(e, st);
            }
            hooks[i] = st.hook();
            counters[i] = st.counters();
        }
        qh = new QueueHooks(chain, entries.toArray(ChainEntry[]::new), hooks, counters);
        queueHooks = qh;
        return qh;
    }

    /** The driver finished a request (guest or module-owned). */
    @Override
    public void complete(BlockRequest r, long result) {
        finish(pendingFor(r), result);
    }

    private Pending pendingFor(BlockRequest r) {
        int slot = r.slot();
        return slot < slots.length ? slots[slot] : moduleSlots.get(slot - slots.length);
    }

    /**
     * Point ②: the hooks that passed the request on see the result, innermost first; then the
     * guest (status byte and used ring) or the module that issued the request gets it.
     */
    private void finish(Pending p, long result) {
        long res = shortIsAnError(p.request, result);
        QueueHooks qh = p.hooks;
        if (qh != null) {
            for (int i = p.depth - 1; i >= p.start; i--) {
                try {
                    res = qh.hooks[i].afterDriver(p.request, res);
                } catch (RuntimeException | LinkageError | StackOverflowError e) {
                    qh.counters[i].errors++;
                    moduleFailed(qh.entries[i], "completion hook threw on " + p.request, e);
                    res = -Errno.EIO;
                }
            }
            p.hooks = null;
        }
        if (p instanceof GuestSlot s) {
            if (writeThroughFlush(s, res)) {
                return;
            }
            if (res < 0) {
                logDriverError(p.request, res);
                answer(s, VirtioBlk.S_IOERR, 0);
            } else {
                answer(s, VirtioBlk.S_OK, s.writtenOnSuccess);
            }
        } else {
            ModuleSlot m = (ModuleSlot) p;
            DriverCompletion done = m.done;
            m.done = null;
            inFlight--;
            done.complete(m.request, res);
        }
    }

    /**
     * A driver finishes short transfers itself; one that reports fewer bytes than asked has not
     * moved them all, so the request fails rather than be acknowledged with data missing.
     */
    private long shortIsAnError(BlockRequest r, long result) {
        BlockOp op = r.op();
        if (result >= 0 && result < r.length() && (op == BlockOp.READ || op == BlockOp.WRITE)) {
            logDriverError(r, -Errno.EIO);
            return -Errno.EIO;
        }
        return result;
    }

    /**
     * With the guest's cache set to write-through (virtio-blk {@code writeback} = 0), a write is
     * acknowledged only once it is durable: when the guest's write has come back through the
     * hooks, the slot goes down the whole stack again as a FLUSH (so modules make their metadata
     * durable too). Returns whether the request went down again.
     */
    private boolean writeThroughFlush(GuestSlot s, long result) {
        if (s.flushingAfterWrite) {
            s.flushingAfterWrite = false;
            return false;
        }
        // The guest's own request type: a module beneath may have rewritten the op (zero-detect).
        if (s.blk.type() != VirtioBlk.T_OUT || result < 0 || device.writeback()) {
            return false;
        }
        s.flushingAfterWrite = true;
        start(s, s.request.set(BlockOp.FLUSH, 0, 0, s.blk.iov(), 0, false), 0);
        return true;
    }

    /** Writes the status byte and hands the head to the used ring. */
    private void answer(GuestSlot s, int status, int dataWritten) {
        GuestBytes.putByte(s.blk.statusAddress(), (byte) status);
        release(s);
        sink.used(s.request.slot(), dataWritten + 1);
    }

    private void release(GuestSlot s) {
        s.busy = false;
        inFlight--;
    }

    private void moduleFailed(ChainEntry entry, String what, Throwable e) {
        LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + " module=" + entry.name() + ": " + what
                + "; the request fails with an I/O error", e);
        device.disableModule(entry.name(), what + ": " + e);
    }

    /** Hands queued driver requests to the device: once per batch. */
    public void flushBatch() {
        driverQueue.flushBatch();
    }

    /** Collects finished driver requests and runs tasks modules posted, without blocking; returns how many. */
    public int reap() {
        int n = driverQueue.reap();
        if (!mailbox.isEmpty()) {
            Runnable task;
            while ((task = mailbox.poll()) != null) {
                runModuleTask(task);
                n++;
            }
        }
        return n;
    }

    private void runModuleTask(Runnable task) {
        try {
            task.run();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + ": a module task failed", e);
        }
    }

    /** The driver's completion fd to wait on beside the kick, or -1. */
    public int completionFd() {
        return driverQueue.completionFd();
    }

    /** Readable when a module posted work for this queue's event loop; see {@link #mailboxSeen()}. */
    public int mailboxFd() {
        return mailboxSignal.fd();
    }

    /**
     * The driver queue when it can watch the kick fd on its own ring (io_uring), so the loop waits
     * in one place for kicks and completions; null otherwise.
     */
    public KickAware kickAware() {
        return driverQueue instanceof KickAware k ? k : null;
    }

    /** An eventfd the loop waits on, signalled as well when a module posts work (see {@link #kickAware()}). */
    public void alsoSignal(EventFd doorbell) {
        this.loopDoorbell = doorbell;
    }

    /** The loop saw the mailbox fd readable: resets it (the tasks run at the next {@link #reap()}). */
    public void mailboxSeen() {
        mailboxSignal.drain();
    }

    /** Requests started and not yet finished (guest requests and modules' own). */
    public int inFlight() {
        return inFlight;
    }

    public BlockDevice device() {
        return device;
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

    @Override
    public void close() {
        driverQueue.close();
        mailboxSignal.close();
    }

    /** What one module's hook on this queue may do (the {@link HookContext} of the SPI). */
    private final class ModuleContext implements HookContext {
        private final ChainEntry entry;

        ModuleContext(ChainEntry entry) {
            this.entry = entry;
        }

        @Override
        public DeviceInfo device() {
            return deviceInfo;
        }

        @Override
        public int queueIndex() {
            return queueIndex;
        }

        @Override
        public void complete(BlockRequest request, long result) {
            if (result < 0) {
                HookState st = opened.get(entry);
                if (st != null) {
                    st.counters().errors++;
                }
            }
            finish(pendingFor(request), result);
        }

        @Override
        public void execute(Runnable task) {
            mailbox.add(task);
            mailboxSignal.signal();
            EventFd doorbell = loopDoorbell;
            if (doorbell != null) {
                doorbell.signal();
            }
        }

        @Override
        public BlockRequest newRequest() {
            BlockRequest r = new BlockRequest(slots.length + moduleSlots.size(), device.id(), queueIndex);
            moduleSlots.add(new ModuleSlot(r, entry));
            return r;
        }

        @Override
        public void submitBelow(BlockRequest request, DriverCompletion done) {
            ModuleSlot m = (ModuleSlot) pendingFor(request);
            if (m.owner != entry || m.done != null) {
                throw new IllegalStateException("module " + entry.name() + " submitted a request it does not own or that is in flight");
            }
            m.done = done;
            inFlight++;
            HookChain chain = device.hooks();
            QueueHooks qh = chain == null ? null : queueHooks(chain);
            int below = qh == null ? -1 : qh.indexOf(entry);
            if (qh == null || below < 0) {
                // The module left the chain meanwhile: nothing sits beneath it but the driver.
                m.hooks = null;
                driverQueue.submit(request);
                return;
            }
            m.hooks = qh;
            m.start = below + 1;
            if (preCall(m, qh, below + 1)) {
                driverQueue.submit(request);
            }
        }
    }
}
