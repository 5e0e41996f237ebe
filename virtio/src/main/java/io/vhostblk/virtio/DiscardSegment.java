package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** One discard / write-zeroes / secure-erase range ({@code struct virtio_blk_discard_write_zeroes}); a reusable holder. */
public final class DiscardSegment {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private long sector;
    private int numSectors;
    private int flags;

    /** Reads the 16-byte wire form at {@code at} of {@code wire} (a copy: the guest may change its own at any time). */
    public DiscardSegment read(MemorySegment wire, long at) {
        set(wire.get(U64, at), wire.get(U32, at + 8), wire.get(U32, at + 12));
        return this;
    }

    void set(long sector, int numSectors, int flags) {
        this.sector = sector;
        this.numSectors = numSectors;
        this.flags = flags;
    }

    /** First sector (u64 from the guest; negative as a Java long means out of range). */
    public long sector() {
        return sector;
    }

    /** Number of sectors (u32 from the guest, returned unsigned). */
    public long numSectors() {
        return Integer.toUnsignedLong(numSectors);
    }

    public int flags() {
        return flags;
    }

    /** Length in bytes (numSectors * 512; at most 2^41, no overflow). */
    public long bytes() {
        return numSectors() << VirtioBlk.SECTOR_SHIFT;
    }

    /**
     * The status the spec requires for this segment's flags: UNSUPP for any unknown flag, and
     * for UNMAP on DISCARD or SECURE_ERASE (only WRITE_ZEROES defines it); else OK.
     */
    public byte flagsStatus(int type) {
        int allowed = type == VirtioBlk.T_WRITE_ZEROES ? VirtioBlk.RANGE_FLAG_UNMAP : 0;
        return (flags & ~allowed) != 0 ? VirtioBlk.S_UNSUPP : VirtioBlk.S_OK;
    }

    @Override
    public String toString() {
        return "DiscardSegment[sector=" + Long.toUnsignedString(sector) + ", sectors=" + numSectors() + ", flags=" + flags + "]";
    }
}
