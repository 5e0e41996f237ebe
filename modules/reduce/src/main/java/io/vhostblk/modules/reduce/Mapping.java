package io.vhostblk.modules.reduce;

/**
 * A block-map entry, one {@code long}: 0 is unmapped (reads as zeros); otherwise {@code (data block + 1) << 4 | slot}
 * where slot {@link #WHOLE} is an uncompressed block and 0..{@link PackedBlock#MAX_FRAGMENTS}-1 a fragment of a
 * packed block. Data block numbers count from the start of the data area.
 */
final class Mapping {

    static final long UNMAPPED = 0;
    static final int WHOLE = 15;

    private Mapping() {
    }

    static long whole(long dataBlock) {
        return ((dataBlock + 1) << 4) | WHOLE;
    }

    static long fragment(long dataBlock, int slot) {
        return ((dataBlock + 1) << 4) | slot;
    }

    static long dataBlock(long mapping) {
        return (mapping >>> 4) - 1;
    }

    static int slot(long mapping) {
        return (int) (mapping & 15);
    }

    static boolean isWhole(long mapping) {
        return slot(mapping) == WHOLE;
    }

    static String describe(long mapping) {
        if (mapping == UNMAPPED) {
            return "unmapped";
        }
        return isWhole(mapping) ? "data block " + dataBlock(mapping) : "fragment " + slot(mapping) + " of data block " + dataBlock(mapping);
    }
}
