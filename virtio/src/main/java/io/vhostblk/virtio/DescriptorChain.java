package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One descriptor chain, flattened into host-address segments (readable ones first, then
 * writable ones). A reusable holder: the walker refills it for each request, so nothing is
 * allocated per I/O.
 *
 * <p>A segment is not always one descriptor: zero-length descriptors produce no segment, a
 * descriptor crossing from one memory region into a guest-physically adjacent one is split at
 * the boundary, and a descriptor longer than {@link #MAX_SEGMENT_LENGTH} is split so that
 * {@link #length(int)} is never negative. The capacity is fixed at construction; a chain needing
 * more segments is rejected by the walker ({@link DescriptorException}).
 */
public final class DescriptorChain {
    /** Longest single segment: a u32 descriptor length is cut into pieces of at most 1 GiB. */
    public static final int MAX_SEGMENT_LENGTH = 1 << 30;

    private final long[] address;
    private final int[] length;
    private final MemorySegment[] region;
    private final long[] regionOffset;
    private int head = -1;
    private int count;
    private int readableCount;
    private long readableBytes;
    private long writableBytes;
    private int descriptorCount;
    /** Walk state: whether a writable descriptor was seen, and the sum of descriptor lengths so far. */
    private boolean sawWritable;
    private long totalLength;

    public DescriptorChain(int maxSegments) {
        if (maxSegments < 1) {
            throw new IllegalArgumentException("a chain needs room for at least one segment, got " + maxSegments);
        }
        address = new long[maxSegments];
        length = new int[maxSegments];
        region = new MemorySegment[maxSegments];
        regionOffset = new long[maxSegments];
    }

    /**
     * Capacity that holds any chain a queue of this size accepts, provided each descriptor
     * crosses at most one region boundary (a chain is at most queueSize descriptors). Callers
     * that advertise a smaller seg_max may choose less: the walker rejects what does not fit.
     */
    public static int capacityFor(int queueSize) {
        return 2 * queueSize;
    }

    /** Maximum number of segments this holder accepts. */
    public int capacity() {
        return address.length;
    }

    /** The chain's head descriptor index (the id reported in the used ring), or -1 before the first walk. */
    public int head() {
        return head;
    }

    public int segmentCount() {
        return count;
    }

    /** Number of buffer descriptors the chain had (indirect-table pointers not counted). */
    public int descriptorCount() {
        return descriptorCount;
    }

    /** Host address of segment i. */
    public long address(int i) {
        return address[Objects.checkIndex(i, count)];
    }

    /** Length of segment i in bytes, between 1 and {@link #MAX_SEGMENT_LENGTH}. */
    public int length(int i) {
        return length[Objects.checkIndex(i, count)];
    }

    /** Whether segment i is device-writable; segments [0, readableCount) are readable, the rest writable. */
    public boolean writable(int i) {
        return Objects.checkIndex(i, count) >= readableCount;
    }

    /** The region segment holding segment i (bounds-checked access to guest memory). */
    public MemorySegment regionSegment(int i) {
        return region[Objects.checkIndex(i, count)];
    }

    /** Offset of segment i inside {@link #regionSegment(int)}. */
    public long regionOffset(int i) {
        return regionOffset[Objects.checkIndex(i, count)];
    }

    public int readableCount() {
        return readableCount;
    }

    public int writableCount() {
        return count - readableCount;
    }

    public long readableBytes() {
        return readableBytes;
    }

    public long writableBytes() {
        return writableBytes;
    }

    /**
     * Copies up to len bytes of the readable part, starting at readable-byte offset from, into
     * dst at dstOffset (a header gather, say). Returns the bytes copied (fewer when the readable
     * part ends first).
     */
    public long copyFromReadable(long from, MemorySegment dst, long dstOffset, long len) {
        return copy(0, readableCount, from, dst, dstOffset, len, false);
    }

    /**
     * Copies up to len bytes from src at srcOffset into the writable part, starting at
     * writable-byte offset to. Returns the bytes copied.
     */
    public long copyToWritable(long to, MemorySegment src, long srcOffset, long len) {
        return copy(readableCount, count, to, src, srcOffset, len, true);
    }

    private long copy(int first, int end, long skip, MemorySegment other, long otherOffset, long len, boolean intoGuest) {
        if (skip < 0 || len < 0) {
            throw new IllegalArgumentException("negative offset or length");
        }
        long done = 0;
        for (int i = first; i < end && done < len; i++) {
            long segLen = length[i];
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            long n = Math.min(segLen - skip, len - done);
            if (intoGuest) {
                MemorySegment.copy(other, otherOffset + done, region[i], regionOffset[i] + skip, n);
            } else {
                MemorySegment.copy(region[i], regionOffset[i] + skip, other, otherOffset + done, n);
            }
            done += n;
            skip = 0;
        }
        return done;
    }

    /** Empties the holder for a new walk. */
    void reset(int newHead) {
        head = newHead;
        count = 0;
        readableCount = 0;
        readableBytes = 0;
        writableBytes = 0;
        descriptorCount = 0;
        sawWritable = false;
        totalLength = 0;
    }

    /**
     * Counts a buffer descriptor of the walk; false when it is readable after a writable one
     * (which the spec forbids, even when a zero-length descriptor adds no segment).
     */
    boolean countDescriptor(boolean writable) {
        descriptorCount++;
        if (writable) {
            sawWritable = true;
            return true;
        }
        return !sawWritable;
    }

    /** Adds a descriptor's length to the walk's total; false when it no longer fits in 32 bits. */
    boolean addLength(long len) {
        totalLength += len;
        return totalLength <= 0xffffffffL;
    }

    /** Appends a segment; false when the holder is full. Readable segments must all come first. */
    boolean add(long hostAddress, int len, boolean isWritable, MemorySegment regionSegment, long offsetInRegion) {
        if (count == address.length) {
            return false;
        }
        address[count] = hostAddress;
        length[count] = len;
        region[count] = regionSegment;
        regionOffset[count] = offsetInRegion;
        count++;
        if (isWritable) {
            writableBytes += len;
        } else {
            readableCount++;
            readableBytes += len;
        }
        return true;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("DescriptorChain[head=").append(head).append(", ")
                .append(readableCount).append(" readable/").append(readableBytes).append(" B, ")
                .append(count - readableCount).append(" writable/").append(writableBytes).append(" B]");
        return sb.toString();
    }
}
