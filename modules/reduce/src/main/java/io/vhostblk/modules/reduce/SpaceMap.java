package io.vhostblk.modules.reduce;

/**
 * Reference counts and the allocator of the data area. A data block is <em>free</em>, <em>reserved</em> (allocated
 * for a write in flight), <em>live</em> (count &gt; 0), or <em>pending free</em>: its count fell to 0 but the
 * unmapping is not durable yet, so an old mapping surviving a crash may still point at it. Pending blocks become
 * free only after the commit that made their unmapping durable ({@link #sealPending}, {@link #takeCommitted}).
 *
 * <p>Reads and dedup compares <em>pin</em> a block so it cannot become pending while they use it; pins share the
 * count word (upper bits) so pinning allocates nothing.
 *
 * <p>A block freed by a commit is either punched out of the store or <em>kept</em>: free, but still backed by the
 * store, and handed out first. Overwrites free as many blocks as they allocate; punching each and then writing into
 * the hole again costs the file system an extent removal and an allocation per write, and a punch waits for every
 * write in flight on the file (ext4's {@code inode_dio_wait}). So as many freed blocks are kept as writes allocated
 * since the last commit, up to {@link #keepLimit()}; the rest (discards, blocks shared or compressed away) are
 * punched, and {@code du} overstates the real use by at most the limit.
 */
final class SpaceMap {

    static final int REF_MASK = (1 << 20) - 1;
    static final int MAX_REFS = REF_MASK;
    private static final int PIN = 1 << 20;

    private final long blocks;
    private final int[] counts;
    private final long[] free;   // bit set = free
    private final long[] packed; // bit set = the block is a packed block (fragments), not a whole block
    private final long[] kept;   // bit set = free and still backed by the store (not punched): allocated first
    private final long keepLimit;
    private long freeCount;
    private long cursor;
    private long keptCount;
    private long keptCursor;
    private long allocatedSinceCommit;
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
        this.kept = new long[free.length];
        this.keepLimit = Math.min(blocks / KEEP_FRACTION, KEEP_MAX);
    }

    /** Freed blocks kept backed for reuse: 1/32 of the data area, at most 16 Ki blocks (64 MiB of 4 KiB). */
    static final long KEEP_FRACTION = 32;
    static final long KEEP_MAX = 16384;
    /** Small volumes: frees that wait for a commit before they ask for one (each commit is two flushes). */
    static final int MIN_COMMIT_FREES = 64;

    /** The most freed blocks kept backed by the store instead of punched. */
    long keepLimit() {
        return keepLimit;
    }

    /** Free blocks still backed by the store (not punched). */
    long keptBlocks() {
        return keptCount;
    }

    /**
     * Enough blocks wait for a commit that the next one should run now: kept blocks come only from commits, so
     * committing every half limit of frees keeps overwrites writing into backed blocks.
     */
    boolean manyPending() {
        return keepLimit > 0 && pending.size() >= Math.max(MIN_COMMIT_FREES, keepLimit / 2);
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
        // Which free blocks are still backed is not stored: after an open they all count as holes.
        java.util.Arrays.fill(kept, 0);
        keptCount = 0;
        keptCursor = 0;
        allocatedSinceCommit = 0;
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
        long b;
        if (keptCount > 0) {
            b = nextSetFrom(kept, keptCursor);
            clearBit(kept, b);
            keptCount--;
            keptCursor = after(b);
        } else {
            b = nextSetFrom(free, cursor);
            cursor = after(b);
        }
        clearBit(free, b);
        freeCount--;
        allocatedSinceCommit++;
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
     * The commit is durable: the blocks it freed become free. As many as writes allocated since the last commit
     * (up to {@link #keepLimit}) are kept and free at once; the others go to {@code into}, sorted, to be punched:
     * they become allocatable with {@link #unreserve} once their holes are punched, so a late punch can never hit
     * new data.
     */
    void takeCommitted(LongList into) {
        long room = Math.min(keepLimit - keptCount, allocatedSinceCommit);
        allocatedSinceCommit = 0;
        for (int i = 0; i < committing.size(); i++) {
            long b = committing.get(i);
            if (counts[(int) b] != 0) {
                continue; // a pin taken meanwhile puts the block back on pending when released
            }
            if (room > 0) {
                room--;
                setBit(kept, b);
                keptCount++;
                setBit(free, b);
                freeCount++;
            } else {
                into.add(b);
            }
        }
        committing.clear();
        into.sort(); // neighbours become one punch
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

    /** First set bit at or after {@code from}, wrapping around to the start; -1 when none is set. */
    private long nextSetFrom(long[] bits, long from) {
        long b = nextSet(bits, from, blocks);
        return b >= 0 ? b : nextSet(bits, 0, from);
    }

    /** Where the next search starts after block b (wrapping at the end of the area). */
    private long after(long b) {
        return b + 1 == blocks ? 0 : b + 1;
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
