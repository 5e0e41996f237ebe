package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;

import java.lang.foreign.MemorySegment;

/**
 * Positional file I/O over iovec arrays that finishes short transfers, shared by the file-based
 * drivers. Results are bytes transferred or {@code -errno}.
 */
final class FileIo {
    /** Zero-range falls back to this when the file system cannot zero ranges itself. */
    private static final int ZERO_CHUNK = 1 << 20;

    private FileIo() {
    }

    static long readFully(int fd, MemorySegment iov, int count, long offset, long length) {
        long rc = retry(Libc.preadv(fd, iov, count, offset), fd, iov, count, offset, false);
        if (rc < 0 || rc == length) {
            return rc;
        }
        return finish(fd, iov, count, offset, length, rc, false);
    }

    static long writeFully(int fd, MemorySegment iov, int count, long offset, long length) {
        long rc = retry(Libc.pwritev(fd, iov, count, offset), fd, iov, count, offset, true);
        if (rc < 0 || rc == length) {
            return rc;
        }
        return finish(fd, iov, count, offset, length, rc, true);
    }

    private static long retry(long rc, int fd, MemorySegment iov, int count, long offset, boolean write) {
        while (rc == -Errno.EINTR) {
            rc = write ? Libc.pwritev(fd, iov, count, offset) : Libc.preadv(fd, iov, count, offset);
        }
        return rc;
    }

    /**
     * Continues a transfer that stopped after {@code done} bytes, one iovec entry at a time.
     * A read that meets end of file fills the rest with zeros (the image is shorter than the
     * device, as a truncated sparse file can be).
     */
    static long finish(int fd, MemorySegment iov, int count, long offset, long length, long done, boolean write) {
        long skip = done;
        for (int i = 0; i < count; i++) {
            long base = FileDriver.iovBase(iov, i);
            long len = FileDriver.iovLength(iov, i);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            MemorySegment seg = MemorySegment.ofAddress(base + skip).reinterpret(len - skip);
            skip = 0;
            long at = 0;
            while (at < seg.byteSize()) {
                MemorySegment part = seg.asSlice(at);
                long rc = write ? Libc.pwrite(fd, part, part.byteSize(), offset + done)
                        : Libc.pread(fd, part, part.byteSize(), offset + done);
                if (rc == -Errno.EINTR) {
                    continue;
                }
                if (rc < 0) {
                    return rc;
                }
                if (rc == 0) {
                    if (write) {
                        return -Errno.EIO;
                    }
                    part.fill((byte) 0);
                    rc = part.byteSize();
                }
                at += rc;
                done += rc;
            }
        }
        return done == length ? done : -Errno.EIO;
    }

    /** Zeroes a range: deallocating when allowed, else zero-range, else writing zeros. */
    static long writeZeroes(int fd, long offset, long length, boolean unmap) {
        int rc;
        if (unmap) {
            rc = Libc.fallocate(fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offset, length);
            if (rc == 0) {
                return 0;
            }
        }
        rc = Libc.fallocate(fd, Libc.FALLOC_FL_ZERO_RANGE | Libc.FALLOC_FL_KEEP_SIZE, offset, length);
        if (rc == 0) {
            return 0;
        }
        if (rc != -Errno.EOPNOTSUPP && rc != -Errno.EINVAL) {
            return rc;
        }
        return writeZeroBuffer(fd, offset, length);
    }

    private static long writeZeroBuffer(int fd, long offset, long length) {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(ZERO_CHUNK, 4096);
            long done = 0;
            while (done < length) {
                long n = Math.min(ZERO_CHUNK, length - done);
                long rc = Libc.pwrite(fd, zeros, n, offset + done);
                if (rc == -Errno.EINTR) {
                    continue;
                }
                if (rc <= 0) {
                    return rc == 0 ? -Errno.EIO : rc;
                }
                done += rc;
            }
            return 0;
        }
    }
}
