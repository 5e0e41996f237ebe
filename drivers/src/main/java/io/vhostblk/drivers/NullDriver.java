package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

/**
 * A device that stores nothing, for measuring the rest of the stack (Linux null_blk, qemu's
 * null-co). Writes, flushes, discards succeed at once. Reads either leave the guest's buffer as
 * it was ({@code readZeroes} off, like null-co's default read-zeroes=off: fastest, but a guest
 * sees stale memory, so only for benchmarks) or fill it with zeros (a correct empty disk).
 */
public final class NullDriver implements BlockDriver {
    private final long capacity;
    private final boolean readZeroes;

    private NullDriver(long capacity, boolean readZeroes) {
        this.capacity = capacity;
        this.readZeroes = readZeroes;
    }

    /** A null device of {@code size} bytes (a positive multiple of 512). */
    public static NullDriver create(long size, boolean readZeroes) throws DriverException {
        if (size <= 0 || size % 512 != 0) {
            throw new DriverException("null device size " + size + " must be a positive multiple of 512 bytes");
        }
        return new NullDriver(size, readZeroes);
    }

    @Override
    public String kind() {
        return "null";
    }

    @Override
    public String target() {
        return "null:" + capacity + (readZeroes ? ",read-zeroes" : "");
    }

    @Override
    public long capacity() {
        return capacity;
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    /** False: a discarded range would not read back as zeros when reads leave buffers untouched. */
    @Override
    public boolean supportsDiscard() {
        return readZeroes;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return readZeroes;
    }

    @Override
    public DriverQueue openQueue(int queueIndex, DriverCompletion completion) {
        return new ImmediateQueue(this::execute, completion);
    }

    long execute(BlockRequest r) {
        long offset = r.offset();
        long length = r.length();
        if (r.op() != BlockOp.FLUSH && (offset < 0 || length < 0 || offset > capacity - length)) {
            return -Errno.EINVAL;
        }
        return switch (r.op()) {
            case READ -> readZeroes ? Iovecs.zeroIov(r.iov(), r.iovCount(), length) : length;
            case WRITE -> length;
            case FLUSH, DISCARD, WRITE_ZEROES -> 0;
        };
    }

    @Override
    public void sync() {
    }

    @Override
    public void close() {
    }
}
