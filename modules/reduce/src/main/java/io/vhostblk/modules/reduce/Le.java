package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/** Little-endian field access and CRC-32C for the on-disk structures (the image is the same on every host). */
final class Le {

    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Le() {
    }

    static long getLong(MemorySegment s, long at) {
        return s.get(LONG, at);
    }

    static void putLong(MemorySegment s, long at, long v) {
        s.set(LONG, at, v);
    }

    static int getInt(MemorySegment s, long at) {
        return s.get(INT, at);
    }

    static void putInt(MemorySegment s, long at, int v) {
        s.set(INT, at, v);
    }

    static int getU16(MemorySegment s, long at) {
        return Short.toUnsignedInt(s.get(SHORT, at));
    }

    static void putU16(MemorySegment s, long at, int v) {
        s.set(SHORT, at, (short) v);
    }

    /** CRC-32C of {@code length} bytes at {@code offset}, the field at {@code skip} (4 bytes) counted as zero. */
    static int crc(MemorySegment s, long offset, long length, long skip) {
        CRC32C crc = new CRC32C();
        if (skip < 0) {
            crc.update(s.asSlice(offset, length).asByteBuffer());
        } else {
            crc.update(s.asSlice(offset, skip - offset).asByteBuffer());
            crc.update(new byte[4]);
            crc.update(s.asSlice(skip + 4, offset + length - skip - 4).asByteBuffer());
        }
        return (int) crc.getValue();
    }
}
