package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A split virtqueue in guest memory, seen from the device side. Single-threaded: its queue's event loop owns it.
 *
 * <p>Layout (virtio 1.x, little-endian): descriptor table of {@code size} 16-byte entries
 * {addr u64, len u32, flags u16, next u16}; avail ring {flags u16, idx u16, ring[size] u16,
 * used_event u16}; used ring {flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16}.
 *
 * <p>Ordering: avail.idx is read with acquire semantics, so the ring entries and descriptors read
 * after it are the ones the driver published; used elements are written plainly and made visible
 * by a release store of used.idx; a full fence separates that store (or an avail_event store)
 * from the read of the driver's suppression fields, as {@code vring_need_event} requires.
 *
 * <p>Walk rules (each failure is a {@link DescriptorException}; the request fails, the queue
 * goes on): every buffer within guest memory (a buffer crossing into a guest-physically adjacent
 * region is split into two segments, not rejected); next &lt; table size; at most {@code size}
 * buffer descriptors per chain, counting those inside an indirect table and not counting the
 * descriptor that points at the table (so loops end there); no readable descriptor after a
 * writable one; INDIRECT only when negotiated, never nested, never with NEXT; an indirect table
 * non-empty, a multiple of 16 bytes, at most {@code size} entries and inside one region; the sum
 * of buffer lengths fits in 32 bits.
 *
 * <p>Inflight tracking: every head handed out is flagged in an {@link InflightRegion} first,
 * and cleared only after the used index covering it is published. At construction the region
 * is reconciled with the ring ({@link InflightRegion#recover}): requests a previous back-end
 * left in flight are handed out again by {@link #popAvail()}, oldest first, before new ones.
 */
public final class SplitVirtqueue extends AbstractVirtqueue {
    /** Largest split-queue size the spec allows. */
    public static final int MAX_SIZE = 32768;

    public static final short DESC_F_NEXT = 1;
    public static final short DESC_F_WRITE = 2;
    public static final short DESC_F_INDIRECT = 4;
    /** avail.flags: the driver asks for no interrupts (only without EVENT_IDX). */
    public static final short AVAIL_F_NO_INTERRUPT = 1;
    /** used.flags: the device asks for no kicks (only without EVENT_IDX). */
    public static final short USED_F_NO_NOTIFY = 1;

    public static final int DESC_SIZE = DESCRIPTOR_BYTES;
    public static final int DESC_ALIGN = 16;
    public static final int AVAIL_ALIGN = 2;
    public static final int USED_ALIGN = 4;

    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Aligned 16-bit index access with acquire/release modes (ring indexes are 2-aligned by construction). */
    private static final VarHandle INDEX = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final int mask;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final long usedEventOffset;
    private final long availEventOffset;
    private final InflightRegion inflight;
    /** The log for used-ring writes (null when the front-end gave no address for them) and that address. */
    private DirtyLog usedLog;
    private long usedLogGpa;

    private int nextAvail;
    /** Last avail.idx read; entries up to it may be consumed without another acquire. */
    private int availShadow;
    private int nextUsed;
    /** used.idx as last published: the "old" of vring_need_event. */
    private int publishedUsed;
    /** False until the first publish: after a (re)start the driver's state is unknown, so signal. */
    private boolean signalledValid;

    /**
     * @param descUserAddr  descriptor table, front-end user address (as in VHOST_USER_SET_VRING_ADDR)
     * @param nextAvail     the first avail index to process (VHOST_USER_SET_VRING_BASE)
     * @param eventIdx      VIRTIO_RING_F_EVENT_IDX negotiated
     * @param indirect      VIRTIO_RING_F_INDIRECT_DESC negotiated
     */
    public SplitVirtqueue(GuestMemory memory, int size, long descUserAddr, long availUserAddr, long usedUserAddr,
                          int nextAvail, boolean eventIdx, boolean indirect) throws VirtioException {
        this(memory, size, descUserAddr, availUserAddr, usedUserAddr, nextAvail, eventIdx, indirect, null);
    }

    /**
     * @param inflight the front-end's inflight region for this queue (it decides where the queue
     *                 resumes unless it was never initialised), or null to track in private memory
     */
    public SplitVirtqueue(GuestMemory memory, int size, long descUserAddr, long availUserAddr, long usedUserAddr,
                          int nextAvail, boolean eventIdx, boolean indirect, InflightRegion inflight)
            throws VirtioException {
        super(memory, checkedSize(size), eventIdx, indirect);
        if (nextAvail < 0 || nextAvail > 0xffff) {
            throw new VirtioException("vring base " + nextAvail + " is not a 16-bit index");
        }
        RingMemory.checkAligned("descriptor table", descUserAddr, DESC_ALIGN);
        RingMemory.checkAligned("avail ring", availUserAddr, AVAIL_ALIGN);
        RingMemory.checkAligned("used ring", usedUserAddr, USED_ALIGN);
        this.mask = size - 1;
        this.desc = RingMemory.map(memory, "descriptor table", descUserAddr, (long) DESC_SIZE * size, DESC_ALIGN);
        // used_event / avail_event trail the rings; they are mapped even without EVENT_IDX (as QEMU does).
        this.avail = RingMemory.map(memory, "avail ring", availUserAddr, 6L + 2L * size, AVAIL_ALIGN);
        this.used = RingMemory.map(memory, "used ring", usedUserAddr, 6L + 8L * size, USED_ALIGN);
        this.usedEventOffset = 4L + 2L * size;
        this.availEventOffset = 4L + 8L * size;
        // The used index lives in guest memory: after a reconnect it is the truth, not zero.
        this.nextUsed = (short) INDEX.getAcquire(used, 2L) & 0xffff;
        this.publishedUsed = nextUsed;
        this.inflight = inflight != null ? inflight : InflightRegion.detached(size);
        this.nextAvail = this.inflight.recover(nextUsed, size, nextAvail);
        this.availShadow = this.nextAvail;
    }

    private static int checkedSize(int size) throws VirtioException {
        if (size < 1 || size > MAX_SIZE || Integer.bitCount(size) != 1) {
            throw new VirtioException("queue size " + size + " is not a power of two in [1, " + MAX_SIZE + "]");
        }
        return size;
    }

    /** The next avail index the device will read (what GET_VRING_BASE reports). */
    @Override
    public int nextAvail() {
        return nextAvail;
    }

    /** The split ring's base is its next avail index. */
    @Override
    public int vringBase() {
        return nextAvail;
    }

    @Override
    public int resubmitPending() {
        return inflight.resubmitPending();
    }

    /** The used index the next {@link #pushUsed} fills (16-bit, wrapping). */
    public int nextUsed() {
        return nextUsed;
    }

    /**
     * Logs every guest write from now on into {@code log} (live migration): used-ring writes at
     * {@code usedLogGpa} (the front-end's log_guest_addr; negative: none given, not logged), and
     * what {@link #logWritable} is given. Call before the queue's loop runs; null turns logging off.
     */
    @Override
    public void logWritesTo(DirtyLog log, long usedLogGpa) {
        this.dirtyLog = log;
        this.usedLog = usedLogGpa >= 0 ? log : null;
        this.usedLogGpa = usedLogGpa;
    }

    /**
     * Whether head was answered (its used element written) but the used index not yet published:
     * a guest that makes it available again now is offering one buffer twice.
     */
    @Override
    public boolean awaitingPublish(int head) {
        return inflight.completing(head);
    }

    /** The inflight bookkeeping of this queue. */
    public InflightRegion inflight() {
        return inflight;
    }

    /**
     * Pops the next head to process and flags it in flight: first any request a previous
     * back-end left in flight, then the avail ring (acquire read of avail.idx); -1 when empty.
     */
    @Override
    public int popAvail() throws VirtioException {
        int resubmitted = inflight.nextResubmit();
        if (resubmitted >= 0) {
            // Still flagged, with its original fetch counter: a second crash keeps the order.
            return resubmitted;
        }
        if (nextAvail == availShadow && !refreshAvail()) {
            return -1;
        }
        int head = avail.get(U16, 4L + 2L * (nextAvail & mask)) & 0xffff;
        if (head >= size) {
            throw new VirtioException("avail ring entry " + nextAvail + " holds head " + head
                    + ", beyond queue size " + size);
        }
        nextAvail = (nextAvail + 1) & 0xffff;
        inflight.markInflight(head);
        return head;
    }

    /**
     * Whether the driver has made a chain available that {@link #popAvail()} has not returned
     * yet (acquire read). Never throws: a corrupt avail.idx shows as work, and the following
     * {@link #popAvail()} reports it.
     */
    @Override
    public boolean hasAvail() {
        return inflight.resubmitPending() > 0 || nextAvail != availShadow || ((short) INDEX.getAcquire(avail, 2L) & 0xffff) != nextAvail;
    }

    /** Re-reads avail.idx (acquire); true when it is ahead of nextAvail. */
    private boolean refreshAvail() throws VirtioException {
        int idx = (short) INDEX.getAcquire(avail, 2L) & 0xffff;
        int pending = (idx - nextAvail) & 0xffff;
        if (pending > size) {
            throw new VirtioException("avail.idx " + idx + " is " + pending + " entries ahead of next avail "
                    + nextAvail + ", more than queue size " + size);
        }
        availShadow = idx;
        return pending != 0;
    }

    /** Walks the chain starting at head into out, checking every guest value. */
    @Override
    public void walk(int head, DescriptorChain out) throws DescriptorException {
        if (head < 0 || head >= size) {
            throw new DescriptorException("head " + head + " is beyond queue size " + size);
        }
        out.reset(head);
        MemorySegment table = desc;
        long tableBase = 0;
        int tableSize = size;
        boolean inIndirect = false;
        int buffers = 0;
        int idx = head;
        while (true) {
            long off = tableBase + (long) idx * DESC_SIZE;
            // Read each field exactly once: the guest may rewrite the descriptor under us.
            long addr = table.get(U64, off);
            long len = table.get(U32, off + 8) & 0xffffffffL;
            int flags = table.get(U16, off + 12) & 0xffff;
            int next = table.get(U16, off + 14) & 0xffff;
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (inIndirect) {
                    throw RingMemory.chainError(head, idx, true, "nested indirect table");
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    throw RingMemory.chainError(head, idx, false, "INDIRECT together with NEXT");
                }
                int r = indirectTableRegion(head, idx, addr, len);
                table = memory.regionSegment(r);
                tableBase = tableBase(r, addr);
                tableSize = (int) (len / DESC_SIZE);
                inIndirect = true;
                idx = 0;
                continue;
            }
            if (++buffers > size) {
                throw RingMemory.chainError(head, idx, inIndirect, "chain longer than queue size " + size + " (loop?)");
            }
            RingMemory.addDescriptor(memory, out, addr, len, (flags & DESC_F_WRITE) != 0, head, idx, inIndirect);
            if ((flags & DESC_F_NEXT) == 0) {
                return;
            }
            if (next >= tableSize) {
                throw RingMemory.chainError(head, idx, inIndirect, "next index " + next + " is beyond "
                        + (inIndirect ? "indirect table size " : "queue size ") + tableSize);
            }
            idx = next;
        }
    }

    /**
     * For a chain {@link #walk} rejected: the host address of the byte where the request's status
     * belongs (the last byte of the chain's last descriptor, when that one is device-writable and
     * inside guest memory), or -1. Lets the device fail such a request with an error status the
     * guest reads, instead of returning it with nothing written and an undefined status. Follows
     * an indirect table of any length that lies in guest memory, never more steps than it has entries.
     */
    long statusAddressOf(int head) {
        long gpa = statusGuestAddressOf(head);
        return gpa < 0 ? -1 : memory.translate(gpa, 1);
    }

    /** As {@link #statusAddressOf}, as a guest-physical address (not yet checked against the memory table), or -1. */
    @Override
    long statusGuestAddressOf(int head) {
        if (head < 0 || head >= size) {
            return -1;
        }
        MemorySegment table = desc;
        long tableBase = 0;
        int entries = size;
        boolean followedIndirect = false;
        int idx = head;
        for (int steps = 0; steps <= entries; steps++) {
            long off = tableBase + (long) idx * DESC_SIZE;
            long addr = table.get(U64, off);
            long len = table.get(U32, off + 8) & 0xffffffffL;
            int flags = table.get(U16, off + 12) & 0xffff;
            int next = table.get(U16, off + 14) & 0xffff;
            if ((flags & DESC_F_INDIRECT) != 0) {
                int r = followedIndirect ? -1 : anyIndirectTableRegion(addr, len);
                if (r < 0) {
                    return -1;
                }
                table = memory.regionSegment(r);
                tableBase = tableBase(r, addr);
                entries = (int) (len / DESC_SIZE);
                followedIndirect = true;
                idx = 0;
                steps = -1;
                continue;
            }
            if ((flags & DESC_F_NEXT) == 0) {
                return (flags & DESC_F_WRITE) != 0 && len > 0 ? addr + len - 1 : -1;
            }
            if (next >= entries) {
                return -1;
            }
            idx = next;
        }
        return -1;
    }

    /**
     * Writes a used element; becomes visible to the guest at the next {@link #publishUsed()}.
     *
     * @throws IllegalStateException head is not in flight (completing it twice would corrupt the guest's ring)
     */
    @Override
    public void pushUsed(int head, int writtenLength) {
        if (head < 0 || head >= size) {
            throw new IllegalArgumentException("head " + head + " is beyond queue size " + size);
        }
        inflight.markUsed(head);
        long off = 4L + 8L * (nextUsed & mask);
        used.set(U32, off, head);
        used.set(U32, off + 4, writtenLength);
        if (usedLog != null) {
            usedLog.mark(usedLogGpa + off, 8);
        }
        nextUsed = (nextUsed + 1) & 0xffff;
    }

    /** Publishes pushed used elements (release store of used.idx); returns whether the guest wants an interrupt. */
    @Override
    public boolean publishUsed() {
        int old = publishedUsed;
        int now = nextUsed;
        if (old == now) {
            return false;
        }
        inflight.beforePublish();
        INDEX.setRelease(used, 2L, (short) now);
        if (usedLog != null) {
            usedLog.mark(usedLogGpa + 2, 2);
        }
        inflight.afterPublish(now);
        publishedUsed = now;
        // The driver's suppression field must be read after our index is visible, or both sides
        // may decide the other will act (lost interrupt).
        VarHandle.fullFence();
        if (!signalledValid) {
            signalledValid = true;
            return true;
        }
        return driverWants(now, old);
    }

    @Override
    public boolean driverAwaitsUsed() {
        return !signalledValid || driverWants(nextUsed, publishedUsed);
    }

    /** Whether the driver's used_event (or, without EVENT_IDX, its flags) asks to hear that used.idx moved from old to now. */
    private boolean driverWants(int now, int old) {
        if (eventIdx) {
            return needEvent(avail.get(U16, usedEventOffset) & 0xffff, now, old);
        }
        return (avail.get(U16, 0L) & AVAIL_F_NO_INTERRUPT) == 0;
    }

    /**
     * The spec's {@code vring_need_event}: whether moving an index from old to now crossed
     * event, all modulo 2^16.
     */
    public static boolean needEvent(int event, int now, int old) {
        return ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
    }

    /**
     * Turns guest kicks on or off (used.flags or avail_event); after enabling, callers re-check the ring.
     * With EVENT_IDX, enabling sets avail_event to nextAvail ("kick me when you add the next
     * one") and disabling leaves avail_event behind, which stops kicks just the same. The full
     * fence after the store lets the caller's following {@link #hasAvail()} see a chain the driver
     * added before it could see the store: re-check, then sleep only if still empty.
     */
    @Override
    public void setKicksEnabled(boolean enabled) {
        if (eventIdx) {
            if (enabled) {
                used.set(U16, availEventOffset, (short) nextAvail);
                if (usedLog != null) {
                    usedLog.mark(usedLogGpa + availEventOffset, 2);
                }
            }
        } else {
            used.set(U16, 0L, (short) (enabled ? 0 : USED_F_NO_NOTIFY));
            if (usedLog != null) {
                usedLog.mark(usedLogGpa, 2);
            }
        }
        VarHandle.fullFence();
    }
}
