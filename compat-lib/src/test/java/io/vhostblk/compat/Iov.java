package io.vhostblk.compat;

import io.vhostblk.drivers.IoVector;

import java.lang.foreign.MemorySegment;

/** Test access to a request's data, through its {@link IoVector} like any module. */
final class Iov {
    private Iov() {
    }

    /** Copies {@code data} to the start of the request's data. */
    static void write(IoVector v, byte[] data) {
        v.copyFrom(MemorySegment.ofArray(data), 0, 0, data.length);
    }

    /** The first {@code len} bytes of the request's data. */
    static byte[] read(IoVector v, int len) {
        byte[] out = new byte[len];
        v.copyTo(0, MemorySegment.ofArray(out), 0, len);
        return out;
    }
}
