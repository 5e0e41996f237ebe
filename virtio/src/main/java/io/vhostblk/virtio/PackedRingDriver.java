package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The driver side of a packed virtqueue, as a guest's virtio driver plays it: buffer ids from a
 * free list, chains written at the driver's avail position (wrap counter in the AVAIL/USED
 * flags) and made available by the head's flags, written last with release semantics; used
 * descriptors reaped in ring order with acquire semantics; the kick decision of the spec from
 * the device event area. Raw setters let hostile tests write anything. Single-threaded; the
 * device side may run on another thread.
 */
public final class PackedRingDriver implements RingDriver {
    private static final ValueLayout.OfShort U16 = SplitRingDriver.U16;
    private static final ValueLayout.OfInt U32 = SplitRingDriver.U32;
    private static final ValueLayout.OfLong U64 = SplitRingDriver.U64;
    private static final VarHandle FLAGS = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final VarHandle EVENT = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final int WRAP = PackedVirtqueue.WRAP;

    private final GuestRam ram;
    private final int size;
    private final long descGpa;
    private final long driverEventGpa;
    private final long deviceEventGpa;
    private final MemorySegment desc;
    private final MemorySegment driverEvent;
    private final MemorySegment deviceEvent;
    private final int[] freeIds;
    private int freeIdCount;
    /** Ring descriptors not taken by a chain the device has not answered. */
    private int freeSlots;
    /** Per id: ring descriptors its chain took (0: free), and its indirect table (allocated once). */
    private final int[] chainLength;
    private final long[] indirectTable;
    /** Heads written but not yet made available: position and the flags that make them so. */
    private final int[] pendingAt;
    private final short[] pendingFlags;
    private int pendingCount;
    private int nextAvail;
    private boolean availWrap = true;
    private int nextUsed;
    private boolean usedWrap = true;
    private int kickedAt = WRAP;
    private int lastUsedLength;

    /** Allocates the descriptor ring and both event areas in ram (aligned as the spec requires) and zeroes them. */
    public PackedRingDriver(GuestRam ram, int size) {
        if (size < 1 || size > PackedVirtqueue.MAX_SIZE) {
            throw new IllegalArgumentException("packed ring size " + size + " not in 1.." + PackedVirtqueue.MAX_SIZE);
        }
        this.ram = ram;
        this.size = size;
        this.descGpa = ram.alloc(16L * size, 16);
        this.driverEventGpa = ram.alloc(4, 4);
        this.deviceEventGpa = ram.alloc(4, 4);
        this.desc = ram.at(descGpa, 16L * size).fill((byte) 0);
        this.driverEvent = ram.at(driverEventGpa, 4).fill((byte) 0);
        this.deviceEvent = ram.at(deviceEventGpa, 4).fill((byte) 0);
        this.freeIds = new int[size];
        for (int i = 0; i < size; i++) {
            freeIds[i] = size - 1 - i;
        }
        this.freeIdCount = size;
        this.freeSlots = size;
        this.chainLength = new int[size];
        this.indirectTable = new long[size];
        this.pendingAt = new int[size];
        this.pendingFlags = new short[size];
    }

    public int size() {
        return size;
    }

    public long descGpa() {
        return descGpa;
    }

    /** The driver event suppression area (vhost-user passes it as the vring's avail address). */
    public long driverEventGpa() {
        return driverEventGpa;
    }

    /** The device event suppression area (vhost-user passes it as the vring's used address). */
    public long deviceEventGpa() {
        return deviceEventGpa;
    }

    /** The ring state as SET_VRING_BASE carries it (both halves: avail and used position with wrap). */
    public int vringBase() {
        return (nextAvail | (availWrap ? WRAP : 0)) | (nextUsed | (usedWrap ? WRAP : 0)) << 16;
    }

    /** A device-side queue over this ring (front-end user addresses, as vhost-user passes them). */
    @Override
    public PackedVirtqueue deviceQueue(boolean eventIdx, boolean indirect) throws VirtioException {
        return new PackedVirtqueue(ram.memory(), size, GuestRam.userAddr(descGpa), GuestRam.userAddr(driverEventGpa),
                GuestRam.userAddr(deviceEventGpa), vringBase(), eventIdx, indirect);
    }

    public int nextAvail() {
        return nextAvail;
    }

    public boolean availWrap() {
        return availWrap;
    }

    @Override
    public boolean canAdd() {
        return freeIdCount > 0 && freeSlots > 0;
    }

    @Override
    public void writeTableEntry(long tableGpa, int i, long addr, int len, int flags, boolean more) {
        writeTableDescriptor(tableGpa, i, addr, len, flags);
    }

    /** Buffer ids not in use by an offered chain. */
    public int freeIds() {
        return freeIdCount;
    }

    /** Ring descriptors not in use by an offered chain. */
    public int freeSlots() {
        return freeSlots;
    }

    // ---- raw access (hostile tests) ----

    /** Writes ring descriptor pos (flags as given, AVAIL/USED bits included). */
    public void writeDescriptor(int pos, long addr, int len, int id, int flags) {
        writeAt(desc, (long) pos * 16, addr, len, id, flags);
    }

    /** Writes entry idx of an indirect table at tableGpa. */
    public void writeTableDescriptor(long tableGpa, int idx, long addr, int len, int flags) {
        writeAt(ram.at(tableGpa + 16L * idx, 16), 0, addr, len, 0, flags);
    }

    /**
     * Writes a chain's head except its flags: those make it available and are written last, by
     * {@link #publish()}. Until then the old flags stay, a descriptor of an earlier lap (neither
     * available nor newly used); zeroing them would read as "used" under wrap counter 0.
     */
    private void writeHead(long addr, int len, int id) {
        long off = (long) nextAvail * 16;
        desc.set(U64, off, addr);
        desc.set(U32, off + 8, len);
        desc.set(U16, off + 12, (short) id);
    }

    private static void writeAt(MemorySegment s, long off, long addr, int len, int id, int flags) {
        s.set(U64, off, addr);
        s.set(U32, off + 8, len);
        s.set(U16, off + 12, (short) id);
        s.set(U16, off + 14, (short) flags);
    }

    /** The AVAIL/USED bits that make a descriptor available under wrap counter {@code wrap}. */
    public static int availableBits(boolean wrap) {
        return wrap ? PackedVirtqueue.DESC_F_AVAIL : PackedVirtqueue.DESC_F_USED;
    }

    /**
     * Writes a chain of raw descriptors at the driver's avail position (flags as given, plus NEXT
     * on all but the last when {@code link}, plus the AVAIL/USED bits of the current wrap), the
     * id in each, and moves the avail position on; made available by {@link #publish()}. No
     * bookkeeping of ids or slots: for hostile tests.
     */
    public void offerRaw(int id, boolean link, long[] addrs, int[] lens, int[] flags) {
        int headAt = nextAvail;
        short headFlags = 0;
        for (int i = 0; i < addrs.length; i++) {
            int f = flags[i] | (link && i + 1 < addrs.length ? PackedVirtqueue.DESC_F_NEXT : 0) | availableBits(availWrap);
            if (i == 0) {
                writeHead(addrs[i], lens[i], id);
                headFlags = (short) f;
            } else {
                writeDescriptor(nextAvail, addrs[i], lens[i], id, f);
            }
            advanceAvail();
        }
        pendingAt[pendingCount] = headAt;
        pendingFlags[pendingCount] = headFlags;
        pendingCount++;
    }

    private void advanceAvail() {
        if (++nextAvail == size) {
            nextAvail = 0;
            availWrap = !availWrap;
        }
    }

    /** Moves the driver's avail and used positions (with their wrap counters), as on a ring that has run a while. */
    public void setPositions(int availPos, boolean availWrapCounter, int usedPos, boolean usedWrapCounter) {
        nextAvail = availPos;
        availWrap = availWrapCounter;
        nextUsed = usedPos;
        usedWrap = usedWrapCounter;
        kickedAt = availPos | (availWrapCounter ? WRAP : 0);
    }

    /** Sets the driver event suppression area: when the device should notify (ENABLE, DISABLE, DESC at offWrap). */
    public void setDriverEvent(int flags, int offWrap) {
        EVENT.setRelease(driverEvent, 0L, flags << 16 | (offWrap & 0xffff));
    }

    /** The device event suppression area as the device last wrote it: flags in bits 16-17, off_wrap in 0-15. */
    public int deviceEvent() {
        return (int) EVENT.getAcquire(deviceEvent, 0L);
    }

    public int descriptorFlags(int pos) {
        return desc.get(U16, (long) pos * 16 + 14) & 0xffff;
    }

    // ---- driver convenience ----

    /** Writes a direct chain and offers it; returns its buffer id, or -1 if too few ids or ring slots are free. */
    @Override
    public int addChain(Buf... bufs) {
        int id = bufs.length == 0 ? -1 : takeId(bufs.length);
        for (int i = 0; id >= 0 && i < bufs.length; i++) {
            putChainDescriptor(id, i, bufs.length, bufs[i].gpa(), bufs[i].len(), bufs[i].writable());
        }
        return id;
    }

    /**
     * Offers a virtio-blk request (header, data, one status byte) as a three-descriptor chain,
     * allocating nothing; returns its buffer id, or -1 if too few ids or ring slots are free.
     */
    @Override
    public int addRequest(long header, int headerLen, long data, int dataLen, boolean dataWritable, long status) {
        int id = takeId(3);
        if (id >= 0) {
            putChainDescriptor(id, 0, 3, header, headerLen, false);
            putChainDescriptor(id, 1, 3, data, dataLen, dataWritable);
            putChainDescriptor(id, 2, 3, status, 1, true);
        }
        return id;
    }

    /** Takes a free id for a chain of {@code descriptors} ring entries, or -1. */
    private int takeId(int descriptors) {
        if (descriptors > freeSlots || freeIdCount == 0) {
            return -1;
        }
        int id = freeIds[--freeIdCount];
        chainLength[id] = descriptors;
        freeSlots -= descriptors;
        return id;
    }

    /** Writes descriptor i of an n-descriptor chain at the avail position; the head's flags wait for {@link #publish()}. */
    private void putChainDescriptor(int id, int i, int n, long gpa, int len, boolean writable) {
        int f = (writable ? PackedVirtqueue.DESC_F_WRITE : 0) | (i + 1 < n ? PackedVirtqueue.DESC_F_NEXT : 0)
                | availableBits(availWrap);
        if (i == 0) {
            pendingAt[pendingCount] = nextAvail;
            pendingFlags[pendingCount] = (short) f;
            pendingCount++;
            writeHead(gpa, len, id);
        } else {
            writeDescriptor(nextAvail, gpa, len, id, f);
        }
        advanceAvail();
    }

    /** Writes a chain in an indirect table (one ring descriptor) and offers it; returns its id or -1. */
    @Override
    public int addIndirectChain(Buf... bufs) {
        int id = bufs.length == 0 || bufs.length > size ? -1 : takeId(1);
        if (id < 0) {
            return -1;
        }
        if (indirectTable[id] == 0) {
            indirectTable[id] = ram.alloc(16L * size, 16);
        }
        long table = indirectTable[id];
        for (int i = 0; i < bufs.length; i++) {
            writeTableDescriptor(table, i, bufs[i].gpa(), bufs[i].len(), bufs[i].writable() ? PackedVirtqueue.DESC_F_WRITE : 0);
        }
        pendingAt[pendingCount] = nextAvail;
        pendingFlags[pendingCount] = (short) (PackedVirtqueue.DESC_F_INDIRECT | availableBits(availWrap));
        pendingCount++;
        writeHead(table, 16 * bufs.length, id);
        advanceAvail();
        return id;
    }

    /** Offers one descriptor pointing at an indirect table the caller wrote (any length: hostile tests); returns its id or -1. */
    @Override
    public int addIndirectTable(long tableGpa, int len) {
        int id = takeId(1);
        if (id >= 0) {
            pendingAt[pendingCount] = nextAvail;
            pendingFlags[pendingCount] = (short) (PackedVirtqueue.DESC_F_INDIRECT | availableBits(availWrap));
            pendingCount++;
            writeHead(tableGpa, len, id);
            advanceAvail();
        }
        return id;
    }

    /** Makes the offered chains available: their heads' flags, the first one last, with release semantics. */
    @Override
    public void publish() {
        for (int i = pendingCount - 1; i >= 0; i--) {
            FLAGS.setRelease(desc, (long) pendingAt[i] * 16 + 14, pendingFlags[i]);
        }
        pendingCount = 0;
    }

    /**
     * Takes the next used descriptor, returning its id (and freeing its id and slots) or -1 when
     * the device has written nothing new there. The length is then {@link #lastUsedLength()}.
     */
    @Override
    public int reapUsed() {
        if (!usedPending()) {
            return -1;
        }
        long off = (long) nextUsed * 16;
        int id = desc.get(U16, off + 12) & 0xffff;
        lastUsedLength = desc.get(U32, off + 8);
        int took = id < size && chainLength[id] > 0 ? chainLength[id] : 1;
        nextUsed += took;
        if (nextUsed >= size) {
            nextUsed -= size;
            usedWrap = !usedWrap;
        }
        if (id < size && chainLength[id] > 0) {
            chainLength[id] = 0;
            freeSlots += took;
            freeIds[freeIdCount++] = id;
        }
        return id;
    }

    @Override
    public int lastUsedLength() {
        return lastUsedLength;
    }

    /** Whether the device has written a used descriptor the driver has not reaped (acquire). */
    public boolean usedPending() {
        int flags = (short) FLAGS.getAcquire(desc, (long) nextUsed * 16 + 14);
        return ((flags & PackedVirtqueue.DESC_F_AVAIL) != 0) == usedWrap && ((flags & PackedVirtqueue.DESC_F_USED) != 0) == usedWrap;
    }

    /** The driver's used position with its wrap counter in bit 15 (what it would put in an event off_wrap). */
    public int usedPosition() {
        return nextUsed | (usedWrap ? WRAP : 0);
    }

    /**
     * Whether the driver must kick after publishing: from the device event area, DISABLE never,
     * ENABLE always, DESC when the published chains crossed the position it names. Fences first,
     * as a driver must between publishing and reading the device's field.
     */
    public boolean kickNeeded() {
        VarHandle.fullFence();
        int old = kickedAt;
        int now = nextAvail | (availWrap ? WRAP : 0);
        kickedAt = now;
        int event = deviceEvent();
        int mode = (event >>> 16) & 0x3;
        if (mode == PackedVirtqueue.EVENT_FLAG_DISABLE) {
            return false;
        }
        if (mode == PackedVirtqueue.EVENT_FLAG_DESC) {
            return PackedVirtqueue.needEvent(size, event & 0xffff, now, old);
        }
        return true;
    }
}
