package io.vhostblk.modules.reduce;

/**
 * Advisory fingerprint index: 128-bit fingerprint to mapping, a fixed-size table where the newest entry wins its
 * bucket (two slots per bucket). Entries go stale when blocks are rewritten or freed; that is fine because every
 * hit is checked (live block, same kind, same bytes) before sharing. Losing it loses dedup chances, never data.
 */
final class DedupIndex {

    private final long[] hi;
    private final long[] lo;
    private final long[] mappings;
    private final int mask;

    /** A table with at least {@code entries} slots (rounded up to a power of two). */
    DedupIndex(int entries) {
        int size = Integer.highestOneBit(Math.max(2, entries - 1)) << 1;
        hi = new long[size];
        lo = new long[size];
        mappings = new long[size];
        mask = size - 1;
    }

    int capacity() {
        return mappings.length;
    }

    /** The mapping last recorded for this fingerprint, or {@link Mapping#UNMAPPED}. */
    long find(long h, long l) {
        int i = (int) h & mask;
        if (mappings[i] != 0 && hi[i] == h && lo[i] == l) {
            return mappings[i];
        }
        int j = (i + 1) & mask;
        if (mappings[j] != 0 && hi[j] == h && lo[j] == l) {
            return mappings[j];
        }
        return Mapping.UNMAPPED;
    }

    void put(long h, long l, long mapping) {
        int i = (int) h & mask;
        int j = (i + 1) & mask;
        // Same fingerprint replaces itself; otherwise take an empty slot, else evict the first.
        int at = (mappings[i] != 0 && hi[i] == h && lo[i] == l) || mappings[i] == 0 ? i
                : (mappings[j] != 0 && hi[j] == h && lo[j] == l) || mappings[j] == 0 ? j : i;
        hi[at] = h;
        lo[at] = l;
        mappings[at] = mapping;
    }
}
