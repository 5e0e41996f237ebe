package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * Serves a raw image file (or block device) with plain positional system calls, completing every
 * request synchronously on the queue's event loop: preadv/pwritev straight from and into guest
 * memory, fdatasync for FLUSH, hole punching for DISCARD, zero-range for WRITE_ZEROES.
 */
public final class FileDriver extends ImageDriver {
    private final int fd;

    private FileDriver(Path path, int fd, long capacity, boolean readOnly) {
        super(path, capacity, readOnly);
        this.fd = fd;
    }

    /**
     * Opens an image, creating a sparse one of {@code size} bytes when it does not exist.
     *
     * @param size the wanted size in bytes, or -1 to take the existing image's size
     */
    public static FileDriver open(Path path, long size, boolean readOnly) throws DriverException {
        ImageFile.Opened image = ImageFile.open(path, size, readOnly, 0);
        return new FileDriver(path, image.fd(), image.size(), readOnly);
    }

    @Override
    int imageFd() {
        return fd;
    }

    @Override
    public String kind() {
        return "file";
    }

    @Override
    public DriverQueue openQueue(int queueIndex, DriverCompletion completion) {
        return new ImmediateQueue(this::execute, completion);
    }

    @Override
    public void sync() throws DriverException {
        int rc = Libc.fdatasync(fd);
        if (rc < 0) {
            throw new DriverException("fdatasync of " + path + " failed: " + Errno.describe(-rc));
        }
    }

    @Override
    public void close() {
        Libc.close(fd);
    }

    /** Runs one request to its end; returns bytes done or {@code -errno}. */
    long execute(BlockRequest r) {
        if (readOnly && r.op().modifies()) {
            return -Errno.EROFS;
        }
        return switch (r.op()) {
            case READ -> FileIo.readFully(fd, r.iov(), r.iovCount(), r.offset(), r.length());
            case WRITE -> FileIo.writeFully(fd, r.iov(), r.iovCount(), r.offset(), r.length());
            case FLUSH -> Libc.fdatasync(fd);
            case DISCARD -> Libc.fallocate(fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, r.offset(), r.length());
            case WRITE_ZEROES -> FileIo.writeZeroes(fd, r.offset(), r.length(), r.unmap());
        };
    }

    /** Reads an iovec entry's base address. */
    static long iovBase(MemorySegment iov, int i) {
        return iov.get(ValueLayout.JAVA_LONG, (long) i * Libc.IOVEC.byteSize());
    }

    /** Reads an iovec entry's length. */
    static long iovLength(MemorySegment iov, int i) {
        return iov.get(ValueLayout.JAVA_LONG, (long) i * Libc.IOVEC.byteSize() + 8);
    }
}
