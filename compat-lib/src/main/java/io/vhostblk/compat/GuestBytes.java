package io.vhostblk.compat;

import io.vhostblk.linux.Libc;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Byte access to guest memory by host address, for the few bytes the compat-lib itself reads and
 * writes (status byte, GET_ID, discard segments). Addresses come from the virtio layer's
 * bounds-checked translation; one unbounded segment avoids a segment object per access.
 */
final class GuestBytes {
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final long IOV = Libc.IOVEC.byteSize();

    private GuestBytes() {
    }

    static void putByte(long address, byte value) {
        ALL.set(ValueLayout.JAVA_BYTE, address, value);
    }

    static long iovBase(MemorySegment iov, int i) {
        return iov.get(ValueLayout.JAVA_LONG, i * IOV);
    }

    static long iovLength(MemorySegment iov, int i) {
        return iov.get(ValueLayout.JAVA_LONG, i * IOV + 8);
    }

    /** Reads a byte at logical offset {@code at} of the data an iovec array describes. */
    static int byteAt(MemorySegment iov, int count, long at) {
        long skip = at;
        for (int i = 0; i < count; i++) {
            long len = iovLength(iov, i);
            if (skip < len) {
                return ALL.get(ValueLayout.JAVA_BYTE, iovBase(iov, i) + skip) & 0xff;
            }
            skip -= len;
        }
        throw new IndexOutOfBoundsException("offset " + at + " beyond the request's data");
    }

    /** Reads a little-endian value of {@code bytes} bytes at logical offset {@code at} (it may straddle entries). */
    static long littleEndian(MemorySegment iov, int count, long at, int bytes) {
        long v = 0;
        for (int b = bytes - 1; b >= 0; b--) {
            v = (v << 8) | byteAt(iov, count, at + b);
        }
        return v;
    }

    /** Writes {@code value[0..n)} at logical offset 0 of the data an iovec array describes. */
    static void write(MemorySegment iov, int count, byte[] value, int n) {
        int done = 0;
        for (int i = 0; i < count && done < n; i++) {
            long base = iovBase(iov, i);
            long len = iovLength(iov, i);
            for (long j = 0; j < len && done < n; j++) {
                ALL.set(ValueLayout.JAVA_BYTE, base + j, value[done++]);
            }
        }
    }
}
