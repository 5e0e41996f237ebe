package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The driver side of a split virtqueue, as a guest's virtio driver plays it: a descriptor free
 * list, chains (direct or through an indirect table) offered in the avail ring, avail.idx
 * published with release semantics, used entries reaped with acquire semantics, and the kick
 * decision of the spec. Raw setters let hostile tests write anything. Single-threaded; the
 * device side may run on another thread.
 */
public final class SplitRingDriver implements RingDriver {
    public static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INDEX = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    /** One buffer of a chain: guest-physical address, length, device-writable or not. */
    public record Buf(long gpa, int len, boolean writable) {
        public static Buf readable(long gpa, int len) {
            return new Buf(gpa, len, false);
        }

        public static Buf writable(long gpa, int len) {
            return new Buf(gpa, len, true);
        }
    }

    private final GuestRam ram;
    private final int size;
    private final long descGpa;
    private final long availGpa;
    private final long usedGpa;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    /** Free descriptor indexes (a stack) and, per head, the descriptors its chain took. */
    private final int[] free;
    private int freeCount;
    private final int[] chainNext;
    private final int[] chainLength;
    /** Lazily allocated indirect table per head, size entries each. */
    private final long[] indirectTable;
    private int availIdx;
    private int lastUsed;
    private int kickedAt;
    private int lastUsedLength;
    /** The last descriptor of the chain being built. */
    private int chainTail;

    /** Allocates the three ring areas in ram (aligned as the spec requires) and zeroes them. */
    public SplitRingDriver(GuestRam ram, int size) {
        this.ram = ram;
        this.size = size;
        this.descGpa = ram.alloc(16L * size, 16);
        this.availGpa = ram.alloc(6L + 2L * size, 2);
        this.usedGpa = ram.alloc(6L + 8L * size, 4);
        this.desc = ram.at(descGpa, 16L * size).fill((byte) 0);
        this.avail = ram.at(availGpa, 6L + 2L * size).fill((byte) 0);
        this.used = ram.at(usedGpa, 6L + 8L * size).fill((byte) 0);
        this.free = new int[size];
        for (int i = 0; i < size; i++) {
            free[i] = size - 1 - i;
        }
        this.freeCount = size;
        this.chainNext = new int[size];
        this.chainLength = new int[size];
        this.indirectTable = new long[size];
    }

    public int size() {
        return size;
    }

    public long descGpa() {
        return descGpa;
    }

    public long availGpa() {
        return availGpa;
    }

    public long usedGpa() {
        return usedGpa;
    }

    /** A device-side queue over this ring (front-end user addresses, as vhost-user passes them). */
    @Override
    public SplitVirtqueue deviceQueue(boolean eventIdx, boolean indirect) throws VirtioException {
        return new SplitVirtqueue(ram.memory(), size, GuestRam.userAddr(descGpa), GuestRam.userAddr(availGpa),
                GuestRam.userAddr(usedGpa), availIdx, eventIdx, indirect);
    }

    @Override
    public boolean canAdd() {
        return freeCount > 0;
    }

    @Override
    public void writeTableEntry(long tableGpa, int i, long addr, int len, int flags, boolean more) {
        writeTableDescriptor(tableGpa, i, addr, len, flags | (more ? SplitVirtqueue.DESC_F_NEXT : 0), more ? i + 1 : 0);
    }

    /** Descriptors not in use by an offered chain. */
    public int freeDescriptors() {
        return freeCount;
    }

    // ---- raw access (hostile tests) ----

    /** Writes descriptor idx of the ring's table. */
    public void writeDescriptor(int idx, long addr, int len, int flags, int next) {
        writeDescriptorAt(desc, idx, addr, len, flags, next);
    }

    /** Writes entry idx of a descriptor table at tableGpa (an indirect table). */
    public void writeTableDescriptor(long tableGpa, int idx, long addr, int len, int flags, int next) {
        writeDescriptorAt(ram.at(tableGpa + 16L * idx, 16), 0, addr, len, flags, next);
    }

    private static void writeDescriptorAt(MemorySegment table, int idx, long addr, int len, int flags, int next) {
        long off = 16L * idx;
        table.set(U64, off, addr);
        table.set(U32, off + 8, len);
        table.set(U16, off + 12, (short) flags);
        table.set(U16, off + 14, (short) next);
    }

    /** Puts head in the next avail slot without publishing it. */
    public void offer(int head) {
        avail.set(U16, 4L + 2L * (availIdx & (size - 1)), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
    }

    /** Makes offered heads visible (release store of avail.idx). */
    @Override
    public void publish() {
        INDEX.setRelease(avail, 2L, (short) availIdx);
    }

    /** Sets the driver's avail index (not published until {@link #publish()}); for wrap-around and hostile tests. */
    public void setAvailIdx(int idx) {
        availIdx = idx & 0xffff;
    }

    public int availIdx() {
        return availIdx;
    }

    public void setAvailFlags(int flags) {
        avail.set(U16, 0, (short) flags);
    }

    public void setUsedEvent(int idx) {
        avail.set(U16, 4L + 2L * size, (short) idx);
    }

    /** Overwrites the used ring's index (to model a ring state left by an earlier back-end). */
    public void setUsedIdx(int idx) {
        used.set(U16, 2, (short) idx);
        lastUsed = idx & 0xffff;
    }

    public int usedIdx() {
        return (short) INDEX.getAcquire(used, 2L) & 0xffff;
    }

    public int usedFlags() {
        return used.get(U16, 0) & 0xffff;
    }

    public int availEvent() {
        return used.get(U16, 4L + 8L * size) & 0xffff;
    }

    /** id of used element at ring position i (an index modulo size). */
    public int usedId(int i) {
        return used.get(U32, 4L + 8L * (i & (size - 1)));
    }

    public int usedLen(int i) {
        return used.get(U32, 4L + 8L * (i & (size - 1)) + 4);
    }

    // ---- driver convenience ----

    /** Builds a direct chain from free descriptors and offers it; returns its head, or -1 if too few are free. */
    @Override
    public int addChain(Buf... bufs) {
        if (bufs.length == 0 || bufs.length > freeCount) {
            return -1;
        }
        int head = -1;
        for (Buf b : bufs) {
            head = link(head, b.gpa(), b.len(), b.writable());
        }
        return offerChain(head, bufs.length);
    }

    @Override
    public int addRequest(long header, int headerLen, long data, int dataLen, boolean dataWritable, long status) {
        if (freeCount < 3) {
            return -1;
        }
        int head = link(-1, header, headerLen, false);
        link(head, data, dataLen, dataWritable);
        link(head, status, 1, true);
        return offerChain(head, 3);
    }

    /** Puts a buffer in a free descriptor at the end of the chain at head (-1: a new chain); returns the chain's head. */
    private int link(int head, long gpa, int len, boolean writable) {
        int d = free[--freeCount];
        if (head < 0) {
            head = d;
        } else {
            chainNext[chainTail] = d;
            desc.set(U16, 16L * chainTail + 14, (short) d);
            desc.set(U16, 16L * chainTail + 12, (short) (desc.get(U16, 16L * chainTail + 12) | SplitVirtqueue.DESC_F_NEXT));
        }
        writeDescriptor(d, gpa, len, writable ? SplitVirtqueue.DESC_F_WRITE : 0, 0);
        chainTail = d;
        return head;
    }

    private int offerChain(int head, int descriptors) {
        chainLength[head] = descriptors;
        offer(head);
        return head;
    }

    /** Builds a chain in an indirect table (one ring descriptor) and offers it; returns its head or -1. */
    @Override
    public int addIndirectChain(Buf... bufs) {
        if (bufs.length == 0 || bufs.length > size || freeCount == 0) {
            return -1;
        }
        int head = free[--freeCount];
        if (indirectTable[head] == 0) {
            indirectTable[head] = ram.alloc(16L * size, 16);
        }
        long table = indirectTable[head];
        for (int i = 0; i < bufs.length; i++) {
            Buf b = bufs[i];
            boolean more = i + 1 < bufs.length;
            writeTableDescriptor(table, i, b.gpa(), b.len(),
                    (b.writable() ? SplitVirtqueue.DESC_F_WRITE : 0) | (more ? SplitVirtqueue.DESC_F_NEXT : 0),
                    more ? i + 1 : 0);
        }
        writeDescriptor(head, table, 16 * bufs.length, SplitVirtqueue.DESC_F_INDIRECT, 0);
        chainLength[head] = 1;
        offer(head);
        return head;
    }

    /** Offers one descriptor pointing at an indirect table the caller wrote (any length: hostile tests); returns its head or -1. */
    @Override
    public int addIndirectTable(long tableGpa, int len) {
        if (freeCount == 0) {
            return -1;
        }
        int head = free[--freeCount];
        writeDescriptor(head, tableGpa, len, SplitVirtqueue.DESC_F_INDIRECT, 0);
        chainLength[head] = 1;
        offer(head);
        return head;
    }

    /**
     * Takes the next used element, returning its id (and freeing its descriptors) or -1 when the
     * device has published nothing new. The length is then {@link #lastUsedLength()}.
     */
    @Override
    public int reapUsed() {
        if (lastUsed == usedIdx()) {
            return -1;
        }
        int id = usedId(lastUsed);
        lastUsedLength = usedLen(lastUsed);
        lastUsed = (lastUsed + 1) & 0xffff;
        if (id >= 0 && id < size && chainLength[id] > 0) {
            int d = id;
            for (int k = chainLength[id]; k > 0; k--) {
                free[freeCount++] = d;
                d = chainNext[d];
            }
            chainLength[id] = 0;
        }
        return id;
    }

    @Override
    public int lastUsedLength() {
        return lastUsedLength;
    }

    /**
     * Whether the driver must kick after publishing: with EVENT_IDX, whether avail_event was
     * crossed since the last kick decision; else whether used.flags lacks NO_NOTIFY. Fences
     * first, as a driver must between publishing avail.idx and reading the device's field.
     */
    public boolean kickNeeded(boolean eventIdx) {
        VarHandle.fullFence();
        int old = kickedAt;
        kickedAt = availIdx;
        if (eventIdx) {
            return SplitVirtqueue.needEvent(availEvent(), availIdx, old);
        }
        return (usedFlags() & SplitVirtqueue.USED_F_NO_NOTIFY) == 0;
    }
}
