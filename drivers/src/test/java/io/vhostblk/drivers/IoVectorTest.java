package io.vhostblk.drivers;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every operation of {@link IoVector} at region edges, across segment splits, and against hostile ranges. */
class IoVectorTest {
    private final Arena arena = Arena.ofConfined();
    /** Two "guest regions" with guard bytes around: a vector must never touch the guards. */
    private final MemorySegment regionA = arena.allocate(4096, 8);
    private final MemorySegment regionB = arena.allocate(4096, 8);

    @AfterEach
    void close() {
        arena.close();
    }

    /** 3 + 5 bytes: the last 3 bytes of region A and the first 5 of region B. */
    private IoVector split(boolean writable) {
        return new IoVector(4, arena).clear(writable).add(regionA, 4093, 3).add(regionB, 0, 5);
    }

    private static void fill(MemorySegment s, long from, byte... bytes) {
        for (int i = 0; i < bytes.length; i++) {
            s.set(ValueLayout.JAVA_BYTE, from + i, bytes[i]);
        }
    }

    private static byte[] bytes(MemorySegment s, long from, int n) {
        return s.asSlice(from, n).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void lengthAndShapeFollowTheSegments() {
        IoVector v = split(false);
        assertEquals(8, v.length());
        assertEquals(2, v.segmentCount());
        assertFalse(v.deviceWritable());
        assertEquals(0, v.clear(true).length());
        assertTrue(v.deviceWritable());
    }

    @Test
    void readsAcrossTheSplitAndAtBothEnds() {
        fill(regionA, 4093, (byte) 1, (byte) 2, (byte) 3);
        fill(regionB, 0, (byte) 4, (byte) 5, (byte) 6, (byte) 7, (byte) 8);
        IoVector v = split(false);
        assertEquals(1, v.getByte(0));
        assertEquals(3, v.getByte(2));
        assertEquals(4, v.getByte(3));
        assertEquals(8, v.getByte(7));
        MemorySegment out = arena.allocate(8);
        v.copyTo(1, out, 2, 4);
        assertArrayEquals(new byte[] {0, 0, 2, 3, 4, 5, 0, 0}, bytes(out, 0, 8));
        assertThrows(IndexOutOfBoundsException.class, () -> v.getByte(8));
        assertThrows(IndexOutOfBoundsException.class, () -> v.getByte(-1));
        assertThrows(IndexOutOfBoundsException.class, () -> v.copyTo(5, out, 0, 4), "past the end of the data");
    }

    @Test
    void writesAcrossTheSplitStayInsideTheRanges() {
        regionA.fill((byte) 0x55);
        regionB.fill((byte) 0x55);
        IoVector v = split(true);
        MemorySegment src = arena.allocate(8);
        fill(src, 0, (byte) 1, (byte) 2, (byte) 3, (byte) 4, (byte) 5, (byte) 6, (byte) 7, (byte) 8);
        v.copyFrom(src, 0, 0, 8);
        assertArrayEquals(new byte[] {0x55, 1, 2, 3}, bytes(regionA, 4092, 4));
        assertArrayEquals(new byte[] {4, 5, 6, 7, 8, 0x55}, bytes(regionB, 0, 6));
        v.setByte(7, (byte) 9);
        assertEquals(9, regionB.get(ValueLayout.JAVA_BYTE, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> v.copyFrom(src, 0, 1, 8));
        assertEquals(0x55, regionB.get(ValueLayout.JAVA_BYTE, 5), "a refused copy wrote nothing past the data");
    }

    @Test
    void fillZeroAndIsAllZeroOverARangeAcrossTheSplit() {
        regionA.fill((byte) 0x11);
        regionB.fill((byte) 0x11);
        IoVector v = split(true);
        assertFalse(v.isAllZero(0, 8));
        v.fillZero(2, 4);
        assertTrue(v.isAllZero(2, 4));
        assertFalse(v.isAllZero(1, 4));
        assertFalse(v.isAllZero(3, 4));
        assertEquals(0x11, regionA.get(ValueLayout.JAVA_BYTE, 4094));
        assertEquals(0, regionA.get(ValueLayout.JAVA_BYTE, 4095));
        assertEquals(0, regionB.get(ValueLayout.JAVA_BYTE, 2));
        assertEquals(0x11, regionB.get(ValueLayout.JAVA_BYTE, 3));
        assertTrue(v.isAllZero(0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> v.fillZero(4, 5));
    }

    @Test
    void isAllZeroSeesALastNonZeroByteOfALargeRange() {
        MemorySegment big = arena.allocate(300_000, 8);
        IoVector v = new IoVector(1, arena).wrap(big, 0, big.byteSize(), false);
        assertTrue(v.isAllZero(0, v.length()));
        big.set(ValueLayout.JAVA_BYTE, big.byteSize() - 1, (byte) 1);
        assertFalse(v.isAllZero(0, v.length()));
        assertTrue(v.isAllZero(0, v.length() - 1));
    }

    @Test
    void deviceReadableDataRefusesEveryWrite() {
        IoVector v = split(false);
        MemorySegment src = arena.allocate(8);
        assertThrows(WriteRefusedException.class, () -> v.setByte(0, (byte) 1));
        assertThrows(WriteRefusedException.class, () -> v.copyFrom(src, 0, 0, 1));
        assertThrows(WriteRefusedException.class, () -> v.fillZero(0, 1));
        IoVector.Cursor c = v.cursor();
        assertThrows(WriteRefusedException.class, () -> c.write(src, 0, 1));
        assertTrue(c.segment().isReadOnly(), "the raw segment of readable data is a read-only view");
        assertThrows(IllegalArgumentException.class, () -> c.segment().set(ValueLayout.JAVA_BYTE, c.segmentOffset(), (byte) 1));
    }

    @Test
    void cursorWalksPiecesAndReadsAndWritesAcrossThem() {
        fill(regionA, 4093, (byte) 1, (byte) 2, (byte) 3);
        fill(regionB, 0, (byte) 4, (byte) 5, (byte) 6, (byte) 7, (byte) 8);
        IoVector v = split(true);
        IoVector.Cursor c = v.cursor();
        assertEquals(3, c.contiguous());
        assertEquals(4093, c.segmentOffset());
        c.advance(3);
        assertEquals(5, c.contiguous());
        assertEquals(0, c.segmentOffset());
        c.seek(1);
        MemorySegment out = arena.allocate(4);
        c.read(out, 0, 4);
        assertArrayEquals(new byte[] {2, 3, 4, 5}, bytes(out, 0, 4));
        assertEquals(5, c.position());
        assertEquals(3, c.remaining());
        c.seek(2).write(out, 0, 2);
        assertEquals(2, v.getByte(2));
        assertEquals(3, v.getByte(3));
        c.seek(8);
        assertEquals(0, c.contiguous());
        assertThrows(IndexOutOfBoundsException.class, c::segment);
        assertThrows(IndexOutOfBoundsException.class, () -> c.advance(1));
        assertThrows(IndexOutOfBoundsException.class, () -> c.seek(9));
    }

    @Test
    void hostileRangesAreRefusedWithATypedError() {
        IoVector v = new IoVector(2, arena).clear(true);
        assertThrows(IoVectorException.class, () -> v.add(regionA, 4000, 97), "one byte past the region");
        assertThrows(IoVectorException.class, () -> v.add(regionA, 4097, 0 + 1), "starts past the region");
        assertThrows(IoVectorException.class, () -> v.add(regionA, -1, 10));
        assertThrows(IoVectorException.class, () -> v.add(regionA, 0, -1));
        assertThrows(IoVectorException.class, () -> v.add(regionA, Long.MAX_VALUE, Long.MAX_VALUE), "offset + length overflows");
        assertThrows(IoVectorException.class, () -> v.add(regionA, 1, Long.MAX_VALUE));
        assertThrows(IoVectorException.class, () -> v.add(MemorySegment.ofArray(new byte[8]), 0, 8), "heap memory has no address for the kernel");
        assertEquals(0, v.length(), "nothing refused was added");
        v.add(regionA, 0, 4096).add(regionB, 4096, 0); // zero-length: nothing added
        assertEquals(1, v.segmentCount());
        v.add(regionB, 0, 4096);
        assertThrows(IoVectorException.class, () -> v.add(regionA, 0, 1), "beyond the capacity");
        assertEquals(8192, v.length());
    }

    @Test
    void nativeIovecMirrorsTheSegmentsForTheKernel() {
        IoVector v = split(true);
        MemorySegment iov = v.nativeIovec();
        assertEquals(regionA.address() + 4093, iov.get(ValueLayout.JAVA_LONG, 0));
        assertEquals(3, iov.get(ValueLayout.JAVA_LONG, 8));
        assertEquals(regionB.address(), iov.get(ValueLayout.JAVA_LONG, 16));
        assertEquals(5, iov.get(ValueLayout.JAVA_LONG, 24));
    }

    @Test
    void operationsAllocateNothingOnceWarm() {
        IoVector v = split(true);
        MemorySegment buf = arena.allocate(8);
        for (int round = 0; round < 3; round++) {
            long before = TestIo.allocatedBytes();
            for (int i = 0; i < 20_000; i++) {
                v.clear(true).add(regionA, 4093, 3).add(regionB, 0, 5);
                v.copyTo(0, buf, 0, 8);
                v.copyFrom(buf, 0, 0, 8);
                v.fillZero(1, 6);
                v.isAllZero(0, 8);
                IoVector.Cursor c = v.cursor();
                c.advance(4);
                c.read(buf, 0, 2);
            }
            long allocated = TestIo.allocatedBytes() - before;
            if (round == 2) {
                assertTrue(allocated < 20_000, "allocated " + allocated + " bytes over 20,000 requests");
            }
        }
    }
}
