package io.vhostblk.modules.zerodetect;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Whether the buffers of an iovec array hold only zeros. The iovec bases are raw addresses (in
 * guest memory, checked against the memory table before they reached the hooks, or in a module's
 * bounce buffer), read through one segment spanning the address space so that nothing is
 * allocated per request.
 */
final class ZeroData {
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    /** struct iovec: void *iov_base; size_t iov_len. */
    private static final long IOVEC_BYTES = 16;
    /**
     * Compared against with {@link MemorySegment#mismatch}, which the JIT vectorises: faster than
     * a loop of long reads, and it stops at the first non-zero byte like one.
     */
    private static final long ZERO_CHUNK = 64 * 1024;
    private static final MemorySegment ZEROS = Arena.global().allocate(ZERO_CHUNK, 64);

    private ZeroData() {
    }

    /** Whether the first {@code length} bytes of the {@code count} buffers of {@code iov} are all zero. */
    static boolean allZero(MemorySegment iov, int count, long length) {
        long iovAddr = iov.address();
        long left = length;
        for (int i = 0; i < count && left > 0; i++) {
            long base = ALL.get(ValueLayout.JAVA_LONG_UNALIGNED, iovAddr + i * IOVEC_BYTES);
            long n = Math.min(ALL.get(ValueLayout.JAVA_LONG_UNALIGNED, iovAddr + i * IOVEC_BYTES + 8), left);
            if (!zero(base, n)) {
                return false;
            }
            left -= n;
        }
        // Buffers shorter than the request: not a write we understand; leave it to the driver.
        return left == 0;
    }

    private static boolean zero(long address, long n) {
        long done = 0;
        while (done < n) {
            long chunk = Math.min(ZERO_CHUNK, n - done);
            if (MemorySegment.mismatch(ALL, address + done, address + done + chunk, ZEROS, 0, chunk) != -1) {
                return false;
            }
            done += chunk;
        }
        return true;
    }
}
