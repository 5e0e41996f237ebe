package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;

import java.lang.foreign.MemorySegment;

/**
 * A disk held in anonymous memory (qemu's RAM-backed test disks, SPDK's malloc bdev): zero-filled
 * at start, pages allocated by the kernel on first write, gone when the process exits. Requests
 * complete synchronously by copying between the segment and the request's buffers.
 */
public final class RamDriver extends MemoryBackedDriver {
    private final MemorySegment memory;
    private boolean closed;

    private RamDriver(MemorySegment memory, long capacity) {
        super(capacity);
        this.memory = memory;
    }

    /** Maps {@code size} bytes (a positive multiple of 512) of zeroed anonymous memory. */
    public static RamDriver create(long size) throws DriverException {
        checkSize("RAM disk", size);
        try {
            MemorySegment memory = Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE,
                    Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
            return new RamDriver(memory, size);
        } catch (LinuxException e) {
            throw new DriverException("cannot map a RAM disk of " + size + " bytes", e);
        }
    }

    @Override
    public String kind() {
        return "ram";
    }

    @Override
    public String target() {
        return "ram:" + capacity;
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    @Override
    long run(BlockRequest r, long offset, long length) {
        return switch (r.op()) {
            case READ -> {
                if (r.data().length() < length) {
                    yield -Errno.EINVAL;
                }
                r.data().copyFrom(memory, offset, 0, length);
                yield length;
            }
            case WRITE -> {
                if (r.data().length() < length) {
                    yield -Errno.EINVAL;
                }
                r.data().copyTo(0, memory, offset, length);
                yield length;
            }
            case FLUSH -> 0;
            case DISCARD, WRITE_ZEROES -> {
                IoVector.zero(memory, offset, length);
                yield 0;
            }
        };
    }

    /** Unmaps the memory; queues must be closed first. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Libc.munmap(memory);
        }
    }
}
