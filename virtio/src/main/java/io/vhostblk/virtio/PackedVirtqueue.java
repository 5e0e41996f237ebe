package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A packed virtqueue (VIRTIO_F_RING_PACKED, virtio 1.1+) in guest memory, seen from the device
 * side. Single-threaded: its queue's event loop owns it.
 *
 * <p>Layout, little-endian: one descriptor ring of {@code size} 16-byte entries {addr u64, len
 * u32, id u16, flags u16}, shared by both directions; the driver event suppression area (the
 * vring's "avail" address in vhost-user) and the device event suppression area (its "used"
 * address), each {off_wrap u16, flags u16}. A descriptor is available when its AVAIL flag equals
 * the device's avail wrap counter and its USED flag does not; the device answers by writing a
 * used descriptor {id, len, AVAIL = USED = used wrap counter} at its own used position, which
 * then moves on by the number of ring descriptors the answered chain took. Chains are
 * consecutive ring entries linked by NEXT (the buffer id sits in the last one), or one entry
 * pointing at an indirect table.
 *
 * <p>Ordering: the first descriptor's flags are read with acquire semantics, so the chain read
 * after them is the one the driver published; used descriptors' id and len are written plainly,
 * then their flags after a release fence, the batch's first one last (so the driver sees a
 * batch whole); a full fence separates that from reading the driver's event suppression.
 *
 * <p>Checks (as the split ring): ring chains at most {@code size} descriptors and buffer ids
 * below {@code size} and not already in flight (else the ring is corrupt: {@link VirtioException});
 * per request ({@link DescriptorException}): every buffer inside guest memory, no readable
 * descriptor after a writable one, INDIRECT only when negotiated, alone (not in a chain), never
 * inside an indirect table, its table non-empty, a multiple of 16 bytes of at most {@code size}
 * entries inside one region; the chain must still be the one made available when it is walked;
 * the sum of buffer lengths fits in 32 bits.
 *
 * <p>In-flight tracking is private (no shared inflight area): a back-end that dies loses what
 * was in flight on a packed ring (see docs/operations.md).
 */
public final class PackedVirtqueue extends AbstractVirtqueue {
    /** Largest packed-queue size the spec allows (positions are 15 bits). */
    public static final int MAX_SIZE = 32768;

    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;
    public static final int DESC_F_AVAIL = 1 << 7;
    public static final int DESC_F_USED = 1 << 15;

    /** Event suppression flags: notify always, never, or at the descriptor named by off_wrap (EVENT_IDX only). */
    public static final int EVENT_FLAG_ENABLE = 0;
    public static final int EVENT_FLAG_DISABLE = 1;
    public static final int EVENT_FLAG_DESC = 2;
    /** Bit 15 of off_wrap, and of each half of the vring base, holds a wrap counter. */
    public static final int WRAP = 1 << 15;

    public static final int DESC_SIZE = DESCRIPTOR_BYTES;
    public static final int DESC_ALIGN = 16;
    public static final int EVENT_SIZE = 4;
    public static final int EVENT_ALIGN = 4;
    static final long LEN_AT = 8;
    static final long ID_AT = 12;
    static final long FLAGS_AT = 14;

    private static final ValueLayout.OfShort U16 = SplitVirtqueue.U16;
    private static final ValueLayout.OfInt U32 = SplitVirtqueue.U32;
    private static final ValueLayout.OfLong U64 = SplitVirtqueue.U64;
    private static final VarHandle FLAGS = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final VarHandle EVENT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private static final byte FREE = 0;
    private static final byte IN_FLIGHT = 1;
    /** Answered: its used descriptor is written but its flags not yet published. */
    private static final byte COMPLETING = 2;

    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;
    /** Per buffer id: state, the ring position of its first descriptor, the ring descriptors it took. */
    private final byte[] state;
    private final int[] start;
    private final int[] count;
    /** Used descriptors written since the last publish: their ids and positions (wrap in bit 15). */
    private final int[] pendingId;
    private final int[] pendingAt;
    private int pendingCount;

    private int nextAvail;
    private boolean availWrap;
    private int nextUsed;
    private boolean usedWrap;
    /** The used position (wrap in bit 15) as last published: the "old" of the event check. */
    private int publishedUsed;
    /** False until the first publish: after a (re)start the driver's state is unknown, so signal. */
    private boolean signalledValid;

    /**
     * @param descUserAddr   descriptor ring, front-end user address (SET_VRING_ADDR's desc)
     * @param driverUserAddr driver event suppression area (SET_VRING_ADDR's avail)
     * @param deviceUserAddr device event suppression area (SET_VRING_ADDR's used)
     * @param base           SET_VRING_BASE: bits 0-14 next avail position, 15 its wrap counter;
     *                       bits 16-30 used position, 31 its wrap counter (QEMU's encoding). An
     *                       upper half of 0 means "the same as the avail half", the state of a
     *                       ring stopped with nothing in flight, for front-ends that send 16 bits.
     */
    public PackedVirtqueue(GuestMemory memory, int size, long descUserAddr, long driverUserAddr, long deviceUserAddr,
                           int base, boolean eventIdx, boolean indirect) throws VirtioException {
        super(memory, checkedSize(size), eventIdx, indirect);
        int availHalf = base & 0xffff;
        int usedHalf = base >>> 16 == 0 ? availHalf : base >>> 16;
        if ((availHalf & ~WRAP) >= size || (usedHalf & ~WRAP) >= size) {
            throw new VirtioException(String.format("vring base 0x%08x names a position beyond packed queue size %d",
                    base, size));
        }
        RingMemory.checkAligned("descriptor ring", descUserAddr, DESC_ALIGN);
        RingMemory.checkAligned("driver event area", driverUserAddr, EVENT_ALIGN);
        RingMemory.checkAligned("device event area", deviceUserAddr, EVENT_ALIGN);
        this.desc = RingMemory.map(memory, "descriptor ring", descUserAddr, (long) DESC_SIZE * size, DESC_ALIGN);
        this.driverEvent = RingMemory.map(memory, "driver event area", driverUserAddr, EVENT_SIZE, EVENT_ALIGN);
        this.deviceEvent = RingMemory.map(memory, "device event area", deviceUserAddr, EVENT_SIZE, EVENT_ALIGN);
        this.nextAvail = availHalf & ~WRAP;
        this.availWrap = (availHalf & WRAP) != 0;
        this.nextUsed = usedHalf & ~WRAP;
        this.usedWrap = (usedHalf & WRAP) != 0;
        this.publishedUsed = usedHalf;
        this.state = new byte[size];
        this.start = new int[size];
        this.count = new int[size];
        this.pendingId = new int[size];
        this.pendingAt = new int[size];
    }

    private static int checkedSize(int size) throws VirtioException {
        if (size < 1 || size > MAX_SIZE) {
            throw new VirtioException("packed queue size " + size + " is not in [1, " + MAX_SIZE + "]");
        }
        return size;
    }

    /** The next avail position (0..size-1); its wrap counter is {@link #availWrap()}. */
    @Override
    public int nextAvail() {
        return nextAvail;
    }

    public boolean availWrap() {
        return availWrap;
    }

    /** The position the next used descriptor goes to; its wrap counter is {@link #usedWrap()}. */
    public int nextUsed() {
        return nextUsed;
    }

    public boolean usedWrap() {
        return usedWrap;
    }

    @Override
    public int vringBase() {
        return (nextAvail | (availWrap ? WRAP : 0)) | (nextUsed | (usedWrap ? WRAP : 0)) << 16;
    }

    @Override
    public int resubmitPending() {
        return 0;
    }

    @Override
    public void logWritesTo(DirtyLog log, long usedLogGpa) {
        // Used descriptors live in the descriptor ring: they are logged by host address, like buffers.
        this.dirtyLog = log;
    }

    private boolean availableAt(int pos, boolean wrap) {
        int flags = (short) FLAGS.getAcquire(desc, (long) pos * DESC_SIZE + FLAGS_AT);
        return ((flags & DESC_F_AVAIL) != 0) == wrap && ((flags & DESC_F_USED) != 0) != wrap;
    }

    @Override
    public boolean hasAvail() {
        return availableAt(nextAvail, availWrap);
    }

    @Override
    public int popAvail() throws VirtioException {
        if (!availableAt(nextAvail, availWrap)) {
            return -1;
        }
        // Find the chain's last descriptor: it holds the buffer id.
        int pos = nextAvail;
        int descriptors = 1;
        while ((desc.get(U16, (long) pos * DESC_SIZE + FLAGS_AT) & DESC_F_NEXT) != 0) {
            if (descriptors == size) {
                throw new VirtioException("chain at avail position " + nextAvail + " is longer than queue size " + size);
            }
            descriptors++;
            pos = pos + 1 == size ? 0 : pos + 1;
        }
        int id = desc.get(U16, (long) pos * DESC_SIZE + ID_AT) & 0xffff;
        if (id >= size) {
            throw new VirtioException("chain at avail position " + nextAvail + " has buffer id " + id
                    + ", beyond queue size " + size);
        }
        if (state[id] != FREE) {
            throw new VirtioException("chain at avail position " + nextAvail + " reuses buffer id " + id
                    + " while it is still in flight");
        }
        state[id] = IN_FLIGHT;
        start[id] = nextAvail;
        count[id] = descriptors;
        nextAvail += descriptors;
        if (nextAvail >= size) {
            nextAvail -= size;
            availWrap = !availWrap;
        }
        return id;
    }

    @Override
    public void walk(int head, DescriptorChain out) throws DescriptorException {
        if (head < 0 || head >= size || state[head] != IN_FLIGHT) {
            throw new DescriptorException("buffer id " + head + " is not a request in flight on this queue of size " + size);
        }
        out.reset(head);
        int n = count[head];
        int pos = start[head];
        for (int i = 0; i < n; i++) {
            long off = (long) pos * DESC_SIZE;
            // Read each field exactly once: the guest may rewrite the descriptor under us.
            long addr = desc.get(U64, off);
            long len = desc.get(U32, off + LEN_AT) & 0xffffffffL;
            int flags = desc.get(U16, off + FLAGS_AT) & 0xffff;
            if (((flags & DESC_F_NEXT) != 0) != (i + 1 < n)) {
                throw RingMemory.chainError(head, pos, false, "the chain changed after it was made available");
            }
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (n != 1) {
                    throw RingMemory.chainError(head, pos, false, "INDIRECT descriptor inside a chain of " + n);
                }
                walkIndirect(head, pos, addr, len, out);
                return;
            }
            RingMemory.addDescriptor(memory, out, addr, len, (flags & DESC_F_WRITE) != 0, head, pos, false);
            pos = pos + 1 == size ? 0 : pos + 1;
        }
    }

    /** Walks an indirect table: its entries in order (NEXT and the id are ignored there, as the spec says). */
    private void walkIndirect(int head, int pos, long addr, long len, DescriptorChain out) throws DescriptorException {
        int r = indirectTableRegion(head, pos, addr, len);
        MemorySegment table = memory.regionSegment(r);
        long base = tableBase(r, addr);
        int entries = (int) (len / DESC_SIZE);
        for (int i = 0; i < entries; i++) {
            long off = base + (long) i * DESC_SIZE;
            long a = table.get(U64, off);
            long l = table.get(U32, off + LEN_AT) & 0xffffffffL;
            int flags = table.get(U16, off + FLAGS_AT) & 0xffff;
            if ((flags & DESC_F_INDIRECT) != 0) {
                throw RingMemory.chainError(head, i, true, "nested indirect table");
            }
            RingMemory.addDescriptor(memory, out, a, l, (flags & DESC_F_WRITE) != 0, head, i, true);
        }
    }

    /**
     * The guest-physical address of a rejected request's status byte (the last byte of its last
     * buffer, if that is device-writable), or -1. Reads at most the chain's ring entries and one
     * indirect table inside guest memory.
     */
    @Override
    long statusGuestAddressOf(int head) {
        if (head < 0 || head >= size || state[head] != IN_FLIGHT) {
            return -1;
        }
        long off = (long) ((start[head] + count[head] - 1) % size) * DESC_SIZE;
        long addr = desc.get(U64, off);
        long len = desc.get(U32, off + LEN_AT) & 0xffffffffL;
        int flags = desc.get(U16, off + FLAGS_AT) & 0xffff;
        if ((flags & DESC_F_INDIRECT) != 0) {
            int r = anyIndirectTableRegion(addr, len);
            if (r < 0) {
                return -1;
            }
            long last = tableBase(r, addr) + len - DESC_SIZE;
            MemorySegment table = memory.regionSegment(r);
            addr = table.get(U64, last);
            len = table.get(U32, last + LEN_AT) & 0xffffffffL;
            flags = table.get(U16, last + FLAGS_AT) & 0xffff & ~DESC_F_INDIRECT;
        }
        return (flags & DESC_F_WRITE) != 0 && len > 0 ? addr + len - 1 : -1;
    }

    @Override
    public boolean awaitingPublish(int head) {
        return head >= 0 && head < size && state[head] == COMPLETING;
    }

    @Override
    public void pushUsed(int head, int writtenLength) {
        if (head < 0 || head >= size) {
            throw new IllegalArgumentException("buffer id " + head + " is beyond queue size " + size);
        }
        if (state[head] != IN_FLIGHT) {
            throw new IllegalStateException("buffer id " + head + " completed twice (it is not in flight)");
        }
        long off = (long) nextUsed * DESC_SIZE;
        desc.set(U32, off + LEN_AT, writtenLength);
        desc.set(U16, off + ID_AT, (short) head);
        state[head] = COMPLETING;
        pendingId[pendingCount] = head;
        pendingAt[pendingCount] = nextUsed | (usedWrap ? WRAP : 0);
        pendingCount++;
        nextUsed += count[head];
        if (nextUsed >= size) {
            nextUsed -= size;
            usedWrap = !usedWrap;
        }
    }

    @Override
    public boolean publishUsed() {
        int n = pendingCount;
        if (n == 0) {
            return false;
        }
        // id and len of every element before any of their flags; the first element's flags last,
        // so the driver, which reads in ring order, takes the batch whole.
        VarHandle.releaseFence();
        for (int i = n - 1; i >= 0; i--) {
            int at = pendingAt[i];
            long off = (long) (at & ~WRAP) * DESC_SIZE;
            short flags = (short) ((at & WRAP) != 0 ? DESC_F_AVAIL | DESC_F_USED : 0);
            if (i == 0) {
                FLAGS.setRelease(desc, off + FLAGS_AT, flags);
            } else {
                desc.set(U16, off + FLAGS_AT, flags);
            }
            if (dirtyLog != null) {
                dirtyLog.markHost(memory, desc.address() + off + LEN_AT, 8);
            }
            state[pendingId[i]] = FREE;
        }
        pendingCount = 0;
        int old = publishedUsed;
        int now = nextUsed | (usedWrap ? WRAP : 0);
        publishedUsed = now;
        // The driver's event suppression must be read after our flags are visible (lost interrupt otherwise).
        VarHandle.fullFence();
        if (!signalledValid) {
            signalledValid = true;
            return true;
        }
        return driverWants(now, old);
    }

    @Override
    public boolean driverAwaitsUsed() {
        return !signalledValid || driverWants(nextUsed | (usedWrap ? WRAP : 0), publishedUsed);
    }

    /** Whether the driver event area asks to hear that the used position moved from old to now. */
    private boolean driverWants(int now, int old) {
        int event = (int) EVENT.getAcquire(driverEvent, 0L);
        int mode = (event >>> 16) & 0x3;
        if (mode == EVENT_FLAG_DISABLE) {
            return false;
        }
        if (mode == EVENT_FLAG_DESC && eventIdx) {
            return needEvent(size, event & 0xffff, now, old);
        }
        return true;
    }

    /**
     * Whether moving a position from old to now (each with its wrap counter in bit 15) wrote the
     * descriptor at event (same encoding): the packed form of {@code vring_need_event}. Positions
     * are made linear modulo 2 * size, one lap per wrap-counter value.
     */
    public static boolean needEvent(int size, int event, int now, int old) {
        int lap = 2 * size;
        int e = linear(size, event);
        int n = linear(size, now);
        int o = linear(size, old);
        return Math.floorMod(n - e - 1, lap) < Math.floorMod(n - o, lap);
    }

    private static int linear(int size, int posWrap) {
        return (posWrap & ~WRAP) + ((posWrap & WRAP) != 0 ? 0 : size);
    }

    /**
     * Turns driver kicks on or off in the device event area: off is DISABLE; on is ENABLE, or with
     * EVENT_IDX "notify at the descriptor at my next avail position". One 32-bit store, then a
     * full fence so the caller's following {@link #hasAvail()} is a safe re-check.
     */
    @Override
    public void setKicksEnabled(boolean enabled) {
        int value;
        if (!enabled) {
            value = EVENT_FLAG_DISABLE << 16;
        } else if (eventIdx) {
            value = EVENT_FLAG_DESC << 16 | nextAvail | (availWrap ? WRAP : 0);
        } else {
            value = EVENT_FLAG_ENABLE << 16;
        }
        EVENT.setRelease(deviceEvent, 0L, value);
        if (dirtyLog != null) {
            dirtyLog.markHost(memory, deviceEvent.address(), EVENT_SIZE);
        }
        VarHandle.fullFence();
    }
}
