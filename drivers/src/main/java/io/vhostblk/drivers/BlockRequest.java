package io.vhostblk.drivers;

import java.lang.foreign.MemorySegment;

/**
 * A block request in the driver's standard form: operation, byte offset and length, and its data as
 * an {@link IoVector} (guest memory, or a module's bounce buffer). Instances are preallocated per
 * queue slot and reused, so nothing is allocated per I/O.
 *
 * <p>A hook never changes a request it is given (the runner checks, and takes a module that does out
 * of the chain): to send something else below, it fills a child request ({@link #parent()} is the
 * request it serves) and submits that.
 */
public final class BlockRequest {
    private final int slot;
    private final String deviceId;
    private final int queueIndex;
    private BlockOp op;
    private long offset;
    private long length;
    private final BlockRequest parent;
    private IoVector data = IoVector.NONE;
    private boolean unmap;
    private long submittedNanos;
    private long result;

    public BlockRequest(int slot, String deviceId, int queueIndex) {
        this(slot, deviceId, queueIndex, null);
    }

    /** A child request: what a module sends below on behalf of {@code parent}. */
    public BlockRequest(int slot, String deviceId, int queueIndex, BlockRequest parent) {
        this.slot = slot;
        this.deviceId = deviceId;
        this.queueIndex = queueIndex;
        this.parent = parent;
    }

    /** Refills this request for a new I/O; {@code data} is {@link IoVector#NONE} for requests without data. */
    public BlockRequest set(BlockOp op, long offset, long length, IoVector data, boolean unmap) {
        this.op = op;
        this.offset = offset;
        this.length = length;
        this.data = data;
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

    /** The data: device-writable buffers for READ, the device-readable data for WRITE, {@link IoVector#NONE} otherwise. */
    public IoVector data() {
        return data;
    }

    /** The request this child request serves, or null (a guest request, or a module's own I/O). */
    public BlockRequest parent() {
        return parent;
    }

    /** The data's native {@code struct iovec} array, for the kernel (drivers only). */
    MemorySegment iov() {
        return data.nativeIovec();
    }

    int iovCount() {
        return data.segmentCount();
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
