package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

/**
 * What the in-memory drivers (RAM, null) share: a fixed size, always writable, nothing to sync,
 * and requests checked against the size and run to their end inside {@code submit}.
 */
abstract class MemoryBackedDriver implements BlockDriver {
    /** Written by {@link #resize} where a driver allows it, read by the queues: volatile. */
    protected volatile long capacity;

    MemoryBackedDriver(long capacity) {
        this.capacity = capacity;
    }

    /** Refuses a size that is not a positive multiple of 512 bytes; {@code what} names the device kind. */
    static void checkSize(String what, long size) throws DriverException {
        if (size <= 0 || size % 512 != 0) {
            throw new DriverException(what + " size " + size + " must be a positive multiple of 512 bytes");
        }
    }

    @Override
    public long capacity() {
        return capacity;
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    @Override
    public DriverQueue openQueue(int queueIndex, DriverCompletion completion) {
        return new ImmediateQueue(this::execute, completion);
    }

    /** Runs one request; returns bytes done or {@code -errno} ({@code EINVAL} outside the device). */
    final long execute(BlockRequest r) {
        long offset = r.offset();
        long length = r.length();
        if (r.op() != BlockOp.FLUSH && (offset < 0 || length < 0 || offset > capacity - length)) {
            return -Errno.EINVAL;
        }
        return run(r, offset, length);
    }

    /** Runs a request already checked to lie inside the device. */
    abstract long run(BlockRequest r, long offset, long length);

    @Override
    public void sync() {
    }
}
