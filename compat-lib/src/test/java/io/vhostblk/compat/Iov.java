package io.vhostblk.compat;

import io.vhostblk.linux.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Test access to the data a request's {@code struct iovec} array describes (raw host addresses). */
final class Iov {
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final long SIZE = Libc.IOVEC.byteSize();

    private Iov() {
    }

    /** Copies {@code data} to the start of the buffers. */
    static void write(MemorySegment iov, int count, byte[] data) {
        int done = 0;
        for (int i = 0; i < count && done < data.length; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, i * SIZE);
            int n = (int) Math.min(iov.get(ValueLayout.JAVA_LONG, i * SIZE + 8), data.length - done);
            MemorySegment.copy(data, done, ALL, ValueLayout.JAVA_BYTE, base, n);
            done += n;
        }
    }

    /** The first {@code len} bytes of the buffers. */
    static byte[] read(MemorySegment iov, int count, int len) {
        byte[] out = new byte[len];
        int done = 0;
        for (int i = 0; i < count && done < len; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, i * SIZE);
            int n = (int) Math.min(iov.get(ValueLayout.JAVA_LONG, i * SIZE + 8), len - done);
            MemorySegment.copy(ALL, ValueLayout.JAVA_BYTE, base, out, done, n);
            done += n;
        }
        return out;
    }

    /** A one-entry iovec array over a buffer of {@code len} bytes, both allocated in {@code arena}. */
    static MemorySegment[] single(Arena arena, int len) {
        MemorySegment buf = arena.allocate(len, 4096);
        MemorySegment iov = arena.allocate(Libc.IOVEC);
        iov.set(ValueLayout.JAVA_LONG, 0, buf.address());
        iov.set(ValueLayout.JAVA_LONG, 8, len);
        return new MemorySegment[]{iov, buf};
    }
}
