package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.IoUring;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;

import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One queue of a {@link FaultyDriver}. Delayed completions wait on io_uring timeouts in a ring of
 * this queue's own, whose fd is the queue's completion fd; the ring also polls the fd of the
 * driver beneath, so the event loop still waits in one place and never sleeps on a delay.
 */
final class FaultyQueue implements DriverQueue {
    private static final System.Logger LOG = System.getLogger(FaultyQueue.class.getName());
    /** Slots of this queue's own requests (power-cut captures), above any virtqueue head or module slot. */
    static final int OWN_SLOT_BASE = 1 << 16;
    /** A power-cut capture larger than this fails the request instead of holding its old data in memory. */
    static final long MAX_CAPTURE = 64L << 20;
    private static final int OP_TIMEOUT = 11;
    private static final long TIMER_TAG = -1;
    private static final long POLL_TAG = -2;

    /** The old data under one write, kept until a flush makes the write durable. */
    static final class Undo {
        final long offset;
        final long length;
        final long order;
        final MemorySegment oldData;
        /** The old data as a vector the driver beneath reads it into. */
        final IoVector readBack;
        final BlockRequest original;
        BlockRequest own;
        /** The write's place in the device's completion order; 0 while it has not completed (or failed). */
        long completedAs;

        Undo(BlockRequest original, long order) {
            this.offset = original.offset();
            this.length = original.length();
            this.order = order;
            this.original = original;
            Arena auto = Arena.ofAuto();
            this.oldData = auto.allocate(Math.max(length, 1), 4096);
            this.readBack = IoVector.over(oldData.asSlice(0, length), true);
        }
    }

    private final FaultyDriver driver;
    private final FaultSpec spec;
    private final FaultCounters counters;
    private final int queueIndex;
    private final DriverCompletion completion;
    private final DriverQueue beneath;
    private final Arena arena = Arena.ofShared();
    private final IoUring timers;
    private final MemorySegment timespec;
    private boolean pollArmed;
    private BlockRequest[] delayed = new BlockRequest[64];
    private long[] delayedResult = new long[64];
    private int delayedHead;
    private int delayedCount;
    private long transfers;
    private boolean warnedEio;
    private boolean warnedEnospc;
    private boolean warnedShort;
    private boolean warnedCut;
    // Power cut: the capture of each write in flight (by its slot), the captures' own requests, and
    // every capture no flush has covered yet.
    private Undo[] undoBySlot = new Undo[64];
    private Undo[] undoByOwnSlot = new Undo[64];
    private int[] freeOwnSlots = new int[0];
    private int freeOwnCount;
    private int ownSlotsMade;
    private long[] flushMark = new long[64];
    private final List<Undo> unflushed = new ArrayList<>();

    FaultyQueue(FaultyDriver driver, int queueIndex, DriverCompletion completion, BlockDriver inner) throws DriverException {
        this.driver = driver;
        this.spec = driver.spec();
        this.counters = driver.counters();
        this.queueIndex = queueIndex;
        this.completion = completion;
        this.beneath = inner.openQueue(queueIndex, this::fromBeneath);
        if (spec.latencyNanos() > 0) {
            try {
                timers = IoUring.create(256, 4096);
            } catch (LinuxException e) {
                beneath.close();
                throw new DriverException("device=" + driver.id() + " queue " + queueIndex
                        + ": cannot create the io_uring that times injected latency", e);
            }
            timespec = arena.allocate(16);
            timespec.set(ValueLayout.JAVA_LONG, 0, spec.latencyNanos() / 1_000_000_000L);
            timespec.set(ValueLayout.JAVA_LONG, 8, spec.latencyNanos() % 1_000_000_000L);
        } else {
            timers = null;
            timespec = null;
        }
    }

    private static boolean modifies(BlockOp op) {
        return op == BlockOp.WRITE || op == BlockOp.WRITE_ZEROES || op == BlockOp.DISCARD;
    }

    @Override
    public void submit(BlockRequest r) {
        if (driver.cut.get()) {
            refuseAfterCut(r);
            return;
        }
        BlockOp op = r.op();
        long nth = spec.eioNth() > 0 ? driver.requests.incrementAndGet() : 0;
        if ((nth > 0 && nth == spec.eioNth()) || (op != BlockOp.FLUSH && spec.inEioRange(r.offset(), r.length()))) {
            counters.eio.incrementAndGet();
            warnedEio = warn(warnedEio, "EIO injected on " + r);
            finish(r, -Errno.EIO);
            return;
        }
        if (op == BlockOp.WRITE && spec.enospcAfter() >= 0 && driver.bytesWritten.addAndGet(r.length()) > spec.enospcAfter()) {
            counters.enospc.incrementAndGet();
            warnedEnospc = warn(warnedEnospc, "ENOSPC injected (no space left after " + spec.enospcAfter() + " bytes) on " + r);
            finish(r, -Errno.ENOSPC);
            return;
        }
        if (spec.powerCut()) {
            if (modifies(op)) {
                long n = driver.writesSubmitted.incrementAndGet();
                if (spec.powerCutAfter() > 0 && n > spec.powerCutAfter()) {
                    driver.cutPower();
                    refuseAfterCut(r);
                } else {
                    capture(r);
                }
                return;
            }
            if (op == BlockOp.FLUSH) {
                flushMark = grow(flushMark, r.slot());
                flushMark[r.slot()] = driver.writeCompletions.get();
            }
        }
        beneath.submit(r);
    }

    private void refuseAfterCut(BlockRequest r) {
        counters.failedAfterPowerCut.incrementAndGet();
        warnedCut = warn(warnedCut, "power is cut: EIO on " + r);
        finish(r, -Errno.EIO);
    }

    /** Power cut: reads the old data under a write into a buffer of ours; the write goes down once that is done. */
    private void capture(BlockRequest r) {
        if (r.length() > MAX_CAPTURE) {
            counters.eio.incrementAndGet();
            LOG.log(Level.WARNING, label() + ": power-cut mode cannot keep the old data of " + r
                    + " (more than " + MAX_CAPTURE + " bytes): EIO");
            finish(r, -Errno.EIO);
            return;
        }
        Undo u = new Undo(r, driver.undoOrder.incrementAndGet());
        int own = takeOwnSlot();
        undoByOwnSlot[own] = u;
        u.own = new BlockRequest(OWN_SLOT_BASE + own, r.deviceId(), queueIndex);
        if (r.slot() >= undoBySlot.length) {
            undoBySlot = Arrays.copyOf(undoBySlot, Math.max(undoBySlot.length * 2, r.slot() + 1));
        }
        undoBySlot[r.slot()] = u;
        unflushed.add(u);
        beneath.submit(u.own.set(BlockOp.READ, u.offset, u.length, u.readBack, false));
    }

    private int takeOwnSlot() {
        if (freeOwnCount > 0) {
            return freeOwnSlots[--freeOwnCount];
        }
        int s = ownSlotsMade++;
        if (s >= undoByOwnSlot.length) {
            undoByOwnSlot = Arrays.copyOf(undoByOwnSlot, undoByOwnSlot.length * 2);
        }
        return s;
    }

    private void giveBackOwnSlot(int s) {
        undoByOwnSlot[s] = null;
        if (freeOwnCount == freeOwnSlots.length) {
            freeOwnSlots = Arrays.copyOf(freeOwnSlots, Math.max(16, freeOwnSlots.length * 2));
        }
        freeOwnSlots[freeOwnCount++] = s;
    }

    /** A result from the driver beneath: a capture's read, or a request passed down. */
    private void fromBeneath(BlockRequest r, long result) {
        int slot = r.slot();
        if (slot >= OWN_SLOT_BASE) {
            Undo u = undoByOwnSlot[slot - OWN_SLOT_BASE];
            giveBackOwnSlot(slot - OWN_SLOT_BASE);
            if (result != u.length || driver.cut.get()) {
                // Nothing went down: there is nothing to undo.
                unflushed.remove(u);
                undoBySlot[u.original.slot()] = null;
                finish(u.original, result < 0 ? result : -Errno.EIO);
            } else {
                beneath.submit(u.original);
            }
            return;
        }
        long out = result;
        BlockOp op = r.op();
        if (spec.powerCut()) {
            if (modifies(op) && slot < undoBySlot.length && undoBySlot[slot] != null) {
                if (result >= 0) {
                    undoBySlot[slot].completedAs = driver.writeCompletions.incrementAndGet();
                }
                undoBySlot[slot] = null;
            }
            if (driver.cut.get()) {
                counters.failedAfterPowerCut.incrementAndGet();
                out = -Errno.EIO;
            } else if (op == BlockOp.FLUSH && result >= 0) {
                long mark = flushMark[slot];
                long durable = driver.durableThrough.accumulateAndGet(mark, Math::max);
                unflushed.removeIf(u -> u.completedAs > 0 && u.completedAs <= durable);
            }
        }
        if (spec.shortEvery() > 0 && (op == BlockOp.READ || op == BlockOp.WRITE) && out == r.length() && out > 0
                && ++transfers % spec.shortEvery() == 0) {
            out = (r.length() / 2) & ~511L;
            counters.shortTransfers.incrementAndGet();
            warnedShort = warn(warnedShort, "short transfer injected: " + out + " of " + r.length() + " bytes on " + r);
        }
        finish(r, out);
    }

    /** Hands a result to the queue, now or after the injected latency. */
    private void finish(BlockRequest r, long result) {
        if (timers == null) {
            completion.complete(r, result);
            return;
        }
        if (delayedCount == delayed.length) {
            growDelayed();
        }
        int at = (delayedHead + delayedCount) & (delayed.length - 1);
        delayed[at] = r;
        delayedResult[at] = result;
        delayedCount++;
        counters.delayed.incrementAndGet();
        // Every timeout has the same length, so they expire in the order they were queued.
        while (!timers.prepare(OP_TIMEOUT, 0, -1, 0, timespec.address(), 1, 0, TIMER_TAG)) {
            timers.submit();
        }
    }

    private void growDelayed() {
        BlockRequest[] reqs = new BlockRequest[delayed.length * 2];
        long[] results = new long[delayed.length * 2];
        for (int i = 0; i < delayedCount; i++) {
            int from = (delayedHead + i) & (delayed.length - 1);
            reqs[i] = delayed[from];
            results[i] = delayedResult[from];
        }
        delayed = reqs;
        delayedResult = results;
        delayedHead = 0;
    }

    @Override
    public void flushBatch() {
        beneath.flushBatch();
        submitTimers();
    }

    private void submitTimers() {
        if (timers == null) {
            return;
        }
        int fd = beneath.completionFd();
        if (fd >= 0 && !pollArmed && timers.prepare(IoUring.OP_POLL_ADD, 0, fd, 0, 0, 0, Libc.POLLIN, POLL_TAG)) {
            pollArmed = true;
        }
        int rc = timers.submit();
        if (rc < 0 && rc != -Errno.EINTR && rc != -Errno.EAGAIN && rc != -Errno.EBUSY) {
            throw new IllegalStateException(label() + ": cannot submit the latency timers: " + Errno.describe(-rc));
        }
    }

    @Override
    public int reap() {
        int n = 0;
        if (timers != null) {
            if (timers.cqOverflowed()) {
                timers.submitAndWait(0);
            }
            int head = timers.cqHead();
            int tail = timers.cqTail();
            for (; head != tail; head++) {
                long tag = timers.cqeUserData(head);
                if (tag == TIMER_TAG) {
                    BlockRequest r = delayed[delayedHead];
                    long result = delayedResult[delayedHead];
                    delayed[delayedHead] = null;
                    delayedHead = (delayedHead + 1) & (delayed.length - 1);
                    delayedCount--;
                    completion.complete(r, result);
                    n++;
                } else if (tag == POLL_TAG) {
                    pollArmed = false;
                }
            }
            timers.consume(head);
        }
        n += beneath.reap();
        submitTimers();
        return n;
    }

    @Override
    public int completionFd() {
        return timers != null ? timers.fd() : beneath.completionFd();
    }

    @Override
    public int inFlight() {
        return beneath.inFlight() + delayedCount;
    }

    @Override
    public void close() {
        try {
            beneath.close();
        } finally {
            if (timers != null) {
                timers.close();
            }
            arena.close();
            if (spec.powerCut()) {
                driver.handOver(unflushed);
            }
        }
    }

    private String label() {
        return "device=" + driver.id() + " queue=" + queueIndex;
    }

    /** Logs the first fault of a kind on this queue as a warning and the rest at debug level; returns true. */
    private boolean warn(boolean warnedBefore, String what) {
        LOG.log(warnedBefore ? Level.DEBUG : Level.WARNING, label() + ": " + what);
        return true;
    }

    private static long[] grow(long[] a, int index) {
        return index < a.length ? a : Arrays.copyOf(a, Math.max(a.length * 2, index + 1));
    }
}
