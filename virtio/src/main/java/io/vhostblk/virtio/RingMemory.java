package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;

/** Checks and mappings both ring formats share: ring areas in guest memory, and buffers added to a chain. */
final class RingMemory {
    private RingMemory() {
    }

    static void checkAligned(String what, long uva, int align) throws VirtioException {
        if ((uva & (align - 1)) != 0) {
            throw new VirtioException(String.format("%s address 0x%x is not %d-byte aligned", what, uva, align));
        }
    }

    /** Maps a ring area given by front-end user address; its host address must keep the alignment (atomic index access). */
    static MemorySegment map(GuestMemory memory, String what, long uva, long len, int align) throws VirtioException {
        MemorySegment s;
        try {
            s = memory.userRange(uva, len);
        } catch (VirtioException e) {
            throw new VirtioException(what + " (" + len + " bytes) is outside guest memory: " + e.getMessage());
        }
        if ((s.address() & (align - 1)) != 0) {
            throw new VirtioException(String.format("%s maps to host address 0x%x, not %d-byte aligned "
                    + "(region mmap offset misaligned)", what, s.address(), align));
        }
        return s;
    }

    /**
     * Adds one buffer descriptor of a walk to the chain: readable ones before writable ones, the
     * total length within 32 bits, the buffer inside guest memory.
     */
    static void addDescriptor(GuestMemory memory, DescriptorChain out, long addr, long len, boolean writable, int head,
                              int idx, boolean inIndirect) throws DescriptorException {
        if (!out.countDescriptor(writable)) {
            throw chainError(head, idx, inIndirect, "readable descriptor after a writable one");
        }
        if (!out.addLength(len)) {
            throw chainError(head, idx, inIndirect, "total chain length exceeds 2^32-1 bytes");
        }
        if (len != 0) {
            addBuffer(memory, out, addr, len, writable, head, idx, inIndirect);
        }
    }

    /** Adds [addr, addr+len) to the chain, split at region boundaries and at MAX_SEGMENT_LENGTH. */
    static void addBuffer(GuestMemory memory, DescriptorChain out, long addr, long len, boolean writable, int head,
                          int idx, boolean inIndirect) throws DescriptorException {
        long gpa = addr;
        long left = len;
        while (left > 0) {
            int r = memory.regionIndex(gpa, 1);
            if (r < 0) {
                throw chainError(head, idx, inIndirect, String.format(
                        "buffer 0x%x+0x%x is not inside guest memory (0x%x unmapped)", addr, len, gpa));
            }
            long n = Math.min(Math.min(left, memory.bytesToRegionEnd(r, gpa)), DescriptorChain.MAX_SEGMENT_LENGTH);
            long offset = gpa - memory.regionGuestAddr(r);
            MemorySegment region = memory.regionSegment(r);
            if (!out.add(region.address() + offset, (int) n, writable, region, offset)) {
                throw chainError(head, idx, inIndirect, "chain needs more than " + out.capacity() + " segments");
            }
            gpa += n;
            left -= n;
        }
    }

    static DescriptorException chainError(int head, int idx, boolean inIndirect, String problem) {
        return new DescriptorException("chain at head " + head + ", " + (inIndirect ? "indirect " : "")
                + "descriptor " + idx + ": " + problem);
    }

    /**
     * Writes {@code status} at guest-physical {@code gpa} if it is inside guest memory (logging it
     * when {@code log} is set); returns the used length to report: 1 when written, else 0.
     */
    static int writeStatus(GuestMemory memory, long gpa, byte status, DirtyLog log) {
        int r = gpa < 0 ? -1 : memory.regionIndex(gpa, 1);
        if (r < 0) {
            return 0;
        }
        memory.regionSegment(r).set(java.lang.foreign.ValueLayout.JAVA_BYTE, gpa - memory.regionGuestAddr(r), status);
        if (log != null) {
            log.mark(gpa, 1);
        }
        return 1;
    }
}
