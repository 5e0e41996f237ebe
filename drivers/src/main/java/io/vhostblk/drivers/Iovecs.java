package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Copies between an iovec array and a memory segment without creating a segment per entry: the
 * iovec bases are raw addresses, addressed through one segment spanning the address space.
 */
final class Iovecs {
    /** The whole address space; iovec entries were checked against guest memory before they got here. */
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final long ZERO_CHUNK = 64 * 1024;
    private static final MemorySegment ZEROS = Arena.global().allocate(ZERO_CHUNK, 4096);

    private Iovecs() {
    }

    /**
     * Copies {@code length} bytes between {@code medium} at {@code offset} and the buffers of
     * {@code iov}; returns {@code length}, or {@code -EINVAL} when the buffers hold fewer bytes.
     */
    static long copy(MemorySegment medium, long offset, MemorySegment iov, int count, long length, boolean toIov) {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long base = FileDriver.iovBase(iov, i);
            long n = Math.min(FileDriver.iovLength(iov, i), length - done);
            if (toIov) {
                MemorySegment.copy(medium, offset + done, ALL, base, n);
            } else {
                MemorySegment.copy(ALL, base, medium, offset + done, n);
            }
            done += n;
        }
        return done == length ? length : -Errno.EINVAL;
    }

    /** Fills the first {@code length} bytes of the buffers of {@code iov} with zeros; returns length or {@code -EINVAL}. */
    static long zeroIov(MemorySegment iov, int count, long length) {
        long done = 0;
        for (int i = 0; i < count && done < length; i++) {
            long n = Math.min(FileDriver.iovLength(iov, i), length - done);
            zero(ALL, FileDriver.iovBase(iov, i), n);
            done += n;
        }
        return done == length ? length : -Errno.EINVAL;
    }

    /** Zeroes {@code length} bytes of {@code target} from {@code offset}, from a shared zero page run. */
    static void zero(MemorySegment target, long offset, long length) {
        long done = 0;
        while (done < length) {
            long n = Math.min(ZERO_CHUNK, length - done);
            MemorySegment.copy(ZEROS, 0, target, offset + done, n);
            done += n;
        }
    }
}
