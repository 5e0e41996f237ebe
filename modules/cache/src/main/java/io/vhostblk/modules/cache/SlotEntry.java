package io.vhostblk.modules.cache;

import java.util.zip.CRC32C;

/**
 * One slot's 16-byte entry in the slot table: the block it holds dirty (48 bits, plus one so that zero means
 * empty), the commit that wrote it (48 bits), and a CRC32C of those 12 bytes. Only dirty slots have entries
 * (clean blocks can always be read again from below). An entry never crosses a 512-byte sector, so a torn page
 * write leaves each entry old or new; a bad checksum is treated as unknown and cleared at the next commit.
 */
final class SlotEntry {
    static final long EMPTY = -1;
    static final long CORRUPT = -2;
    private static final long MASK48 = (1L << 48) - 1;

    private final CRC32C crc = new CRC32C();
    private final byte[] scratch = new byte[12];
    private final byte[] entry = new byte[CacheHeader.ENTRY];

    /** The entry for {@code block} (or {@link #EMPTY}) in a buffer reused by the next call. */
    byte[] encode(long block, long seq) {
        encode(entry, 0, block, seq);
        return entry;
    }

    /** Writes the entry for {@code block} (or {@link #EMPTY}) at {@code at} of {@code table}. */
    void encode(byte[] table, int at, long block, long seq) {
        if (block < 0) {
            java.util.Arrays.fill(table, at, at + CacheHeader.ENTRY, (byte) 0);
            return;
        }
        putLe(table, at, (block + 1) & MASK48, 6);
        putLe(table, at + 6, seq & MASK48, 6);
        System.arraycopy(table, at, scratch, 0, 12);
        crc.reset();
        crc.update(scratch, 0, 12);
        putLe(table, at + 12, crc.getValue(), 4);
    }

    /** The block of the entry at {@code at}: a block number, {@link #EMPTY} or {@link #CORRUPT}. */
    long block(byte[] table, int at) {
        long b = getLe(table, at, 6);
        if (b == 0) {
            return EMPTY;
        }
        crc.reset();
        crc.update(table, at, 12);
        return (int) crc.getValue() == (int) getLe(table, at + 12, 4) ? b - 1 : CORRUPT;
    }

    /** The commit number of the entry at {@code at} (valid only when {@link #block} is a block). */
    static long seq(byte[] table, int at) {
        return getLe(table, at + 6, 6);
    }

    private static void putLe(byte[] a, int at, long v, int n) {
        for (int i = 0; i < n; i++) {
            a[at + i] = (byte) (v >>> (8 * i));
        }
    }

    private static long getLe(byte[] a, int at, int n) {
        long v = 0;
        for (int i = 0; i < n; i++) {
            v |= (a[at + i] & 0xFFL) << (8 * i);
        }
        return v;
    }
}
