package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The virtio-blk config space ({@code struct virtio_blk_config} up to write_zeroes_may_unmap and
 * its padding, 60 bytes, little-endian). Which fields the guest may trust is governed by the
 * feature bits offered; unoffered fields are still encoded as given (normally zero).
 *
 * @param capacity              disk size in 512-byte sectors
 * @param physicalBlockExp      log2 of logical blocks per physical block (TOPOLOGY)
 * @param alignmentOffset       offset of the first aligned logical block (TOPOLOGY)
 * @param minIoSize             suggested minimum I/O size in logical blocks (TOPOLOGY)
 * @param optIoSize             optimal I/O size in logical blocks (TOPOLOGY)
 * @param writeback             1 = write-back cache, 0 = write-through (CONFIG_WCE)
 */
public record BlkConfig(long capacity, int sizeMax, int segMax,
                        int cylinders, int heads, int sectors,
                        int blkSize,
                        int physicalBlockExp, int alignmentOffset, int minIoSize, int optIoSize,
                        int writeback, int numQueues,
                        int maxDiscardSectors, int maxDiscardSeg, int discardSectorAlignment,
                        int maxWriteZeroesSectors, int maxWriteZeroesSeg, int writeZeroesMayUnmap) {

    /** Bytes encoded: through write_zeroes_may_unmap (56) plus its 3 bytes of padding. */
    public static final int SIZE = 60;

    public static final int CAPACITY_OFFSET = 0;
    public static final int SIZE_MAX_OFFSET = 8;
    public static final int SEG_MAX_OFFSET = 12;
    public static final int CYLINDERS_OFFSET = 16;
    public static final int HEADS_OFFSET = 18;
    public static final int SECTORS_OFFSET = 19;
    public static final int BLK_SIZE_OFFSET = 20;
    public static final int PHYSICAL_BLOCK_EXP_OFFSET = 24;
    public static final int ALIGNMENT_OFFSET_OFFSET = 25;
    public static final int MIN_IO_SIZE_OFFSET = 26;
    public static final int OPT_IO_SIZE_OFFSET = 28;
    public static final int WRITEBACK_OFFSET = 32;
    public static final int NUM_QUEUES_OFFSET = 34;
    public static final int MAX_DISCARD_SECTORS_OFFSET = 36;
    public static final int MAX_DISCARD_SEG_OFFSET = 40;
    public static final int DISCARD_SECTOR_ALIGNMENT_OFFSET = 44;
    public static final int MAX_WRITE_ZEROES_SECTORS_OFFSET = 48;
    public static final int MAX_WRITE_ZEROES_SEG_OFFSET = 52;
    public static final int WRITE_ZEROES_MAY_UNMAP_OFFSET = 56;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public BlkConfig {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity " + capacity + " sectors is negative");
        }
        checkUnsigned("cylinders", cylinders, 0xffff);
        checkUnsigned("heads", heads, 0xff);
        checkUnsigned("sectors", sectors, 0xff);
        checkUnsigned("physicalBlockExp", physicalBlockExp, 0xff);
        checkUnsigned("alignmentOffset", alignmentOffset, 0xff);
        checkUnsigned("minIoSize", minIoSize, 0xffff);
        checkUnsigned("writeback", writeback, 1);
        checkUnsigned("numQueues", numQueues, 0xffff);
        checkUnsigned("writeZeroesMayUnmap", writeZeroesMayUnmap, 1);
    }

    private static void checkUnsigned(String field, int value, int max) {
        if (value < 0 || value > max) {
            throw new IllegalArgumentException(field + " " + value + " is outside [0, " + max + "]");
        }
    }

    /** A builder starting from all-zero fields, one queue and 512-byte blocks. */
    public static Builder builder() {
        return new Builder();
    }

    /** The 60-byte little-endian config space. */
    public byte[] toBytes() {
        byte[] out = new byte[SIZE];
        MemorySegment s = MemorySegment.ofArray(out);
        s.set(U64, CAPACITY_OFFSET, capacity);
        s.set(U32, SIZE_MAX_OFFSET, sizeMax);
        s.set(U32, SEG_MAX_OFFSET, segMax);
        s.set(U16, CYLINDERS_OFFSET, (short) cylinders);
        s.set(ValueLayout.JAVA_BYTE, HEADS_OFFSET, (byte) heads);
        s.set(ValueLayout.JAVA_BYTE, SECTORS_OFFSET, (byte) sectors);
        s.set(U32, BLK_SIZE_OFFSET, blkSize);
        s.set(ValueLayout.JAVA_BYTE, PHYSICAL_BLOCK_EXP_OFFSET, (byte) physicalBlockExp);
        s.set(ValueLayout.JAVA_BYTE, ALIGNMENT_OFFSET_OFFSET, (byte) alignmentOffset);
        s.set(U16, MIN_IO_SIZE_OFFSET, (short) minIoSize);
        s.set(U32, OPT_IO_SIZE_OFFSET, optIoSize);
        s.set(ValueLayout.JAVA_BYTE, WRITEBACK_OFFSET, (byte) writeback);
        s.set(U16, NUM_QUEUES_OFFSET, (short) numQueues);
        s.set(U32, MAX_DISCARD_SECTORS_OFFSET, maxDiscardSectors);
        s.set(U32, MAX_DISCARD_SEG_OFFSET, maxDiscardSeg);
        s.set(U32, DISCARD_SECTOR_ALIGNMENT_OFFSET, discardSectorAlignment);
        s.set(U32, MAX_WRITE_ZEROES_SECTORS_OFFSET, maxWriteZeroesSectors);
        s.set(U32, MAX_WRITE_ZEROES_SEG_OFFSET, maxWriteZeroesSeg);
        s.set(ValueLayout.JAVA_BYTE, WRITE_ZEROES_MAY_UNMAP_OFFSET, (byte) writeZeroesMayUnmap);
        return out;
    }

    /** Decodes a config space (for example after the front-end wrote to it); needs at least {@link #SIZE} bytes. */
    public static BlkConfig fromBytes(byte[] bytes) {
        if (bytes.length < SIZE) {
            throw new IllegalArgumentException("config space needs " + SIZE + " bytes, got " + bytes.length);
        }
        MemorySegment s = MemorySegment.ofArray(bytes);
        return new BlkConfig(s.get(U64, CAPACITY_OFFSET), s.get(U32, SIZE_MAX_OFFSET), s.get(U32, SEG_MAX_OFFSET),
                s.get(U16, CYLINDERS_OFFSET) & 0xffff, s.get(ValueLayout.JAVA_BYTE, HEADS_OFFSET) & 0xff,
                s.get(ValueLayout.JAVA_BYTE, SECTORS_OFFSET) & 0xff, s.get(U32, BLK_SIZE_OFFSET),
                s.get(ValueLayout.JAVA_BYTE, PHYSICAL_BLOCK_EXP_OFFSET) & 0xff,
                s.get(ValueLayout.JAVA_BYTE, ALIGNMENT_OFFSET_OFFSET) & 0xff,
                s.get(U16, MIN_IO_SIZE_OFFSET) & 0xffff, s.get(U32, OPT_IO_SIZE_OFFSET),
                s.get(ValueLayout.JAVA_BYTE, WRITEBACK_OFFSET) & 1, s.get(U16, NUM_QUEUES_OFFSET) & 0xffff,
                s.get(U32, MAX_DISCARD_SECTORS_OFFSET), s.get(U32, MAX_DISCARD_SEG_OFFSET),
                s.get(U32, DISCARD_SECTOR_ALIGNMENT_OFFSET), s.get(U32, MAX_WRITE_ZEROES_SECTORS_OFFSET),
                s.get(U32, MAX_WRITE_ZEROES_SEG_OFFSET), s.get(ValueLayout.JAVA_BYTE, WRITE_ZEROES_MAY_UNMAP_OFFSET) & 1);
    }

    /** This config with the writeback field changed (the guest toggles it under CONFIG_WCE). */
    public BlkConfig withWriteback(boolean enabled) {
        return new BlkConfig(capacity, sizeMax, segMax, cylinders, heads, sectors, blkSize, physicalBlockExp,
                alignmentOffset, minIoSize, optIoSize, enabled ? 1 : 0, numQueues, maxDiscardSectors, maxDiscardSeg,
                discardSectorAlignment, maxWriteZeroesSectors, maxWriteZeroesSeg, writeZeroesMayUnmap);
    }

    /** Mutable builder for {@link BlkConfig}; field names follow the spec. */
    public static final class Builder {
        private long capacity;
        private int sizeMax;
        private int segMax;
        private int cylinders;
        private int heads;
        private int sectors;
        private int blkSize = VirtioBlk.SECTOR_SIZE;
        private int physicalBlockExp;
        private int alignmentOffset;
        private int minIoSize;
        private int optIoSize;
        private int writeback;
        private int numQueues = 1;
        private int maxDiscardSectors;
        private int maxDiscardSeg;
        private int discardSectorAlignment;
        private int maxWriteZeroesSectors;
        private int maxWriteZeroesSeg;
        private int writeZeroesMayUnmap;

        private Builder() {
        }

        /** Disk size in 512-byte sectors. */
        public Builder capacitySectors(long sectors512) {
            this.capacity = sectors512;
            return this;
        }

        public Builder sizeMax(int v) {
            this.sizeMax = v;
            return this;
        }

        public Builder segMax(int v) {
            this.segMax = v;
            return this;
        }

        public Builder geometry(int cylinders, int heads, int sectors) {
            this.cylinders = cylinders;
            this.heads = heads;
            this.sectors = sectors;
            return this;
        }

        public Builder blkSize(int v) {
            this.blkSize = v;
            return this;
        }

        public Builder topology(int physicalBlockExp, int alignmentOffset, int minIoSize, int optIoSize) {
            this.physicalBlockExp = physicalBlockExp;
            this.alignmentOffset = alignmentOffset;
            this.minIoSize = minIoSize;
            this.optIoSize = optIoSize;
            return this;
        }

        public Builder writeback(boolean v) {
            this.writeback = v ? 1 : 0;
            return this;
        }

        public Builder numQueues(int v) {
            this.numQueues = v;
            return this;
        }

        public Builder discard(int maxSectors, int maxSegments, int sectorAlignment) {
            this.maxDiscardSectors = maxSectors;
            this.maxDiscardSeg = maxSegments;
            this.discardSectorAlignment = sectorAlignment;
            return this;
        }

        public Builder writeZeroes(int maxSectors, int maxSegments, boolean mayUnmap) {
            this.maxWriteZeroesSectors = maxSectors;
            this.maxWriteZeroesSeg = maxSegments;
            this.writeZeroesMayUnmap = mayUnmap ? 1 : 0;
            return this;
        }

        public BlkConfig build() {
            return new BlkConfig(capacity, sizeMax, segMax, cylinders, heads, sectors, blkSize, physicalBlockExp,
                    alignmentOffset, minIoSize, optIoSize, writeback, numQueues, maxDiscardSectors, maxDiscardSeg,
                    discardSectorAlignment, maxWriteZeroesSectors, maxWriteZeroesSeg, writeZeroesMayUnmap);
        }
    }
}
