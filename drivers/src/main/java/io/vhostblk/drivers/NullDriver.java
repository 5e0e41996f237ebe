package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

/**
 * A device that stores nothing, for measuring the rest of the stack (Linux null_blk, qemu's
 * null-co). Writes, flushes, discards succeed at once. Reads either leave the guest's buffer as
 * it was ({@code readZeroes} off, like null-co's default read-zeroes=off: fastest, but a guest
 * sees stale memory, so only for benchmarks) or fill it with zeros (a correct empty disk).
 */
public final class NullDriver extends MemoryBackedDriver {
    private final boolean readZeroes;

    private NullDriver(long capacity, boolean readZeroes) {
        super(capacity);
        this.readZeroes = readZeroes;
    }

    /** A null device of {@code size} bytes (a positive multiple of 512). */
    public static NullDriver create(long size, boolean readZeroes) throws DriverException {
        checkSize("null device", size);
        return new NullDriver(size, readZeroes);
    }

    /** Nothing is stored, so any size will do. */
    @Override
    public void resize(long bytes) throws DriverException {
        checkSize("null device", bytes);
        capacity = bytes;
    }

    @Override
    public String kind() {
        return "null";
    }

    @Override
    public String target() {
        return "null:" + capacity + (readZeroes ? ",read-zeroes" : "");
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
    long run(BlockRequest r, long offset, long length) {
        return switch (r.op()) {
            case READ -> {
                if (!readZeroes) {
                    yield length;
                }
                if (r.data().length() < length) {
                    yield -Errno.EINVAL;
                }
                r.data().fillZero(0, length);
                yield length;
            }
            case WRITE -> length;
            case FLUSH, DISCARD, WRITE_ZEROES -> 0;
        };
    }

    @Override
    public void close() {
    }
}
