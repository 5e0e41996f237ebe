package io.vhostblk.modules.reduce;

/**
 * Reference counts and the allocator of the data area. A data block is <em>free</em>, <em>reserved</em> (allocated
 * for a write in flight), <em>live</em> (count &gt; 0), or <em>pending free</em>: its count fell to 0 but the
 * unmapping is not durable yet, so an old mapping surviving a crash may still point at it. Pending blocks become
 * free only after the commit that made their unmapping durable ({@link #sealPending}, {@link #releaseCommitted}).
 *
 * <p>Reads and dedup compares <em>pin</em> a block so it cannot become pending while they use it; pins share the
 * count word (upper bits) so pinning allocates nothing.
 */
final class SpaceMap {

    static final int REF_MASK = (1 << 20) - 1;
    static final int MAX_REFS = REF_MASK;
    private static final int PIN = 1 << 20;

    private final long blocks;
    private final int[] counts;
    private final long[] free;   // bit set = free
    private final long[] packed; // bit set = the block is a packed block (fragments), not a whole block
    private long freeCount;
    private long cursor;
    private final LongList pending = new LongList();
    private final LongList committing = new LongList();

    SpaceMap(long blocks) {
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("data area of " + blocks + " blocks exceeds this build's limit");
        }
        this.blocks = blocks;
        this.counts = new int[(int) blocks];
        this.free = new long[(int) ((blocks + 63) / 64)];
        this.packed = new long[free.length];
    }

    long blocks() {
        return blocks;
    }

    int refs(long block) {
        return counts[(int) block] & REF_MASK;
    }

    /** Loads counts (a checkpoint's) and derives the free and packed sets: every unreferenced block is free. */
    void load(int[] refs, long[] map) {
        System.arraycopy(refs, 0, counts, 0, counts.length);
        rebuild(map);
    }

    /** Marks every unreferenced block free and finds the packed blocks from the map. */
    void rebuild(long[] map) {
        java.util.Arrays.fill(free, 0);
        java.util.Arrays.fill(packed, 0);
        freeCount = 0;
        for (long b = 0; b < blocks; b++) {
            if (counts[(int) b] == 0) {
                setBit(free, b);
                freeCount++;
            }
        }
        for (long m : map) {
            if (m != Mapping.UNMAPPED && !Mapping.isWhole(m)) {
                setBit(packed, Mapping.dataBlock(m));
            }
        }
        pending.clear();
        committing.clear();
        cursor = 0;
    }

    /** Writes the reference counts without pins, as a checkpoint stores them (4 bytes each, little-endian). */
    void writeRefs(java.lang.foreign.MemorySegment out, long at) {
        for (int i = 0; i < counts.length; i++) {
            Le.putInt(out, at + 4L * i, counts[i] & REF_MASK);
        }
    }

    long freeBlocks() {
        return freeCount;
    }

    long liveBlocks() {
        return blocks - freeCount - pending.size() - committing.size();
    }

    boolean hasPending() {
        return pending.size() > 0 || committing.size() > 0;
    }

    /** Reserves a free block for a write (whole or packed), or returns -1 when none is free. */
    long allocate(boolean forPacked) {
        if (freeCount == 0) {
            return -1;
        }
        long b = nextSet(free, cursor, blocks);
        if (b < 0) {
            b = nextSet(free, 0, cursor);
        }
        clearBit(free, b);
        freeCount--;
        cursor = b + 1 == blocks ? 0 : b + 1;
        if (forPacked) {
            setBit(packed, b);
        } else {
            clearBit(packed, b);
        }
        return b;
    }

    /** Makes a block free: a reserved block whose write failed, or a freed one whose unmapping is durable. */
    void unreserve(long b) {
        setBit(free, b);
        freeCount++;
    }

    boolean isPacked(long b) {
        return getBit(packed, b);
    }

    /** True if the block holds live data a new reference may share (not free, reserved or pending). */
    boolean isLive(long b) {
        return b >= 0 && b < blocks && refs(b) > 0;
    }

    void ref(long b) {
        counts[(int) b]++;
    }

    /** Drops one reference; an unreferenced, unpinned block becomes pending free. */
    void unref(long b) {
        int c = --counts[(int) b];
        if (c == 0) {
            pending.add(b);
        }
    }

    void pin(long b) {
        counts[(int) b] += PIN;
    }

    void unpin(long b) {
        int c = counts[(int) b] -= PIN;
        if (c == 0) {
            pending.add(b);
        }
    }

    /** Called when a commit seals the journal: the blocks freed so far are freed by that commit. */
    void sealPending() {
        committing.addAll(pending);
        pending.clear();
    }

    /**
     * The commit is durable: moves the blocks it freed into {@code into}. They become allocatable with
     * {@link #unreserve} once their holes are punched, so a late punch can never hit new data.
     */
    void takeCommitted(LongList into) {
        for (int i = 0; i < committing.size(); i++) {
            long b = committing.get(i);
            if (counts[(int) b] == 0) { // a pin taken meanwhile puts the block back on pending when released
                into.add(b);
            }
        }
        committing.clear();
    }

    private static boolean getBit(long[] bits, long i) {
        return (bits[(int) (i >>> 6)] & (1L << i)) != 0;
    }

    private static void setBit(long[] bits, long i) {
        bits[(int) (i >>> 6)] |= 1L << i;
    }

    private static void clearBit(long[] bits, long i) {
        bits[(int) (i >>> 6)] &= ~(1L << i);
    }

    /** First set bit in [from, to), or -1. */
    private static long nextSet(long[] bits, long from, long to) {
        for (long i = from; i < to; ) {
            int w = (int) (i >>> 6);
            long word = bits[w] & (-1L << i);
            if (word != 0) {
                long found = ((long) w << 6) + Long.numberOfTrailingZeros(word);
                return found < to ? found : -1;
            }
            i = (long) (w + 1) << 6;
        }
        return -1;
    }
}
