package io.vhostblk.drivers;

import java.lang.foreign.MemorySegment;

/**
 * A block request in the driver's standard form: operation, byte offset and length, and the data
 * as a native {@code struct iovec} array pointing into guest memory (or into a module's bounce
 * buffer). Instances are preallocated per queue slot and reused, so nothing is allocated per I/O.
 */
public final class BlockRequest {
    private final int slot;
    private final String deviceId;
    private final int queueIndex;
    private BlockOp op;
    private long offset;
    private long length;
    private MemorySegment iov = MemorySegment.NULL;
    private int iovCount;
    private boolean unmap;
    private long submittedNanos;
    private long result;

    public BlockRequest(int slot, String deviceId, int queueIndex) {
        this.slot = slot;
        this.deviceId = deviceId;
        this.queueIndex = queueIndex;
    }

    /** Refills this request for a new I/O. */
    public BlockRequest set(BlockOp op, long offset, long length, MemorySegment iov, int iovCount, boolean unmap) {
        this.op = op;
        this.offset = offset;
        this.length = length;
        this.iov = iov;
        this.iovCount = iovCount;
        this.unmap = unmap;
        return this;
    }

    /** The slot in the queue's request table (the virtio descriptor head for guest requests). */
    public int slot() {
        return slot;
    }

    public String deviceId() {
        return deviceId;
    }

    public int queueIndex() {
        return queueIndex;
    }

    public BlockOp op() {
        return op;
    }

    /** Byte offset on the device. */
    public long offset() {
        return offset;
    }

    /** Bytes to transfer (READ/WRITE) or the range affected (DISCARD/WRITE_ZEROES); 0 for FLUSH. */
    public long length() {
        return length;
    }

    /** Native array of {@code struct iovec} ({@code io.vhostblk.linux.Libc.IOVEC}). */
    public MemorySegment iov() {
        return iov;
    }

    public int iovCount() {
        return iovCount;
    }

    /** For WRITE_ZEROES: the guest allows the range to be deallocated. */
    public boolean unmap() {
        return unmap;
    }

    public long submittedNanos() {
        return submittedNanos;
    }

    public void submittedNanos(long nanos) {
        this.submittedNanos = nanos;
    }

    /** A result set by a layer that answered the request itself: bytes or {@code -errno}. */
    public long result() {
        return result;
    }

    public void result(long result) {
        this.result = result;
    }

    @Override
    public String toString() {
        return deviceId + "/q" + queueIndex + " slot " + slot + " " + op + " offset " + offset + " length " + length;
    }
}
