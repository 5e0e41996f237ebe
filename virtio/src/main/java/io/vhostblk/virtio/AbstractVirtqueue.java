package io.vhostblk.virtio;

/**
 * What the split and the packed ring share beyond their layouts: the queue's guest memory, size
 * and negotiated ring features, the dirty log, the checks of an indirect table, and answering a
 * rejected chain. Each ring keeps its own layout code (where a descriptor's fields sit, how a
 * chain is linked, how answers are published).
 */
abstract sealed class AbstractVirtqueue implements Virtqueue permits SplitVirtqueue, PackedVirtqueue {
    /** Both rings' descriptors, in the ring and in an indirect table, are 16 bytes. */
    static final int DESCRIPTOR_BYTES = 16;

    final GuestMemory memory;
    final int size;
    final boolean eventIdx;
    final boolean indirect;
    /** Where the back-end's writes are logged during migration, or null; set before the queue runs. */
    DirtyLog dirtyLog;

    AbstractVirtqueue(GuestMemory memory, int size, boolean eventIdx, boolean indirect) {
        this.memory = memory;
        this.size = size;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
    }

    @Override
    public final int size() {
        return size;
    }

    @Override
    public final GuestMemory memory() {
        return memory;
    }

    /** VIRTIO_RING_F_EVENT_IDX negotiated. */
    public final boolean eventIdx() {
        return eventIdx;
    }

    /** VIRTIO_RING_F_INDIRECT_DESC negotiated. */
    public final boolean indirect() {
        return indirect;
    }

    /** Marks every device-writable buffer of a completed chain in the dirty log, if logging (data and status byte). */
    @Override
    public final void logWritable(DescriptorChain chain) {
        DirtyLog log = dirtyLog;
        if (log != null) {
            log.markWritable(memory, chain);
        }
    }

    /**
     * Answers a chain {@link #walk} rejected: writes {@code status} where the chain's status byte
     * belongs, if that can be found safely ({@link #statusGuestAddressOf}). Returns the length to
     * put in the answer: 1 when the status was written, else 0.
     */
    @Override
    public final int answerRejected(int head, byte status) {
        return RingMemory.writeStatus(memory, statusGuestAddressOf(head), status, dirtyLog);
    }

    /**
     * For a chain {@link #walk} rejected: the guest-physical address of the byte where the
     * request's status belongs (the last byte of its last buffer, when that one is
     * device-writable), or -1. Not yet checked against the memory table; reads a bounded number
     * of descriptors whatever the guest wrote.
     */
    abstract long statusGuestAddressOf(int head);

    /**
     * Checks the indirect descriptor {@code idx} of the chain at {@code head} (the ring's own
     * structural rules, nesting and linking, are checked by the caller): INDIRECT negotiated, a
     * table non-empty, a multiple of 16 bytes, at most {@code size} entries, inside one region.
     * Returns the index of the guest memory region holding the table.
     */
    final int indirectTableRegion(int head, int idx, long addr, long len) throws DescriptorException {
        if (!indirect) {
            throw RingMemory.chainError(head, idx, false, "INDIRECT flag set but VIRTIO_RING_F_INDIRECT_DESC not negotiated");
        }
        if (len == 0 || len % DESCRIPTOR_BYTES != 0 || len > (long) size * DESCRIPTOR_BYTES) {
            throw RingMemory.chainError(head, idx, false, "indirect table length " + len
                    + " is not a non-zero multiple of 16 of at most " + size + " entries");
        }
        int r = memory.regionIndex(addr, len);
        if (r < 0) {
            throw RingMemory.chainError(head, idx, false, String.format(
                    "indirect table 0x%x+0x%x is not inside guest memory", addr, len));
        }
        return r;
    }

    /**
     * For the status search of a rejected chain: the region holding an indirect table of any
     * number of whole entries (up to 2^16, the most a 16-bit next can reach), or -1.
     */
    final int anyIndirectTableRegion(long addr, long len) {
        if (len == 0 || len % DESCRIPTOR_BYTES != 0 || len / DESCRIPTOR_BYTES > 0xffff) {
            return -1;
        }
        return memory.regionIndex(addr, len);
    }

    /** Where the table of region {@code r} holding guest-physical {@code addr} begins in that region's segment. */
    final long tableBase(int r, long addr) {
        return addr - memory.regionGuestAddr(r);
    }
}
