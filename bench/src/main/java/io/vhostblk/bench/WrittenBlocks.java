package io.vhostblk.bench;

/** Which blocks of the span a queue has written successfully (one bit each), for --verify's read-back. */
final class WrittenBlocks {
    private final long[] bits;
    private final long blocks;

    WrittenBlocks(long blocks) {
        if (blocks > (1L << 34)) {
            throw new IllegalArgumentException(blocks + " blocks are too many to track for --verify; use --size");
        }
        this.blocks = blocks;
        this.bits = new long[(int) ((blocks + 63) >>> 6)];
    }

    void mark(long block) {
        bits[(int) (block >>> 6)] |= 1L << block;
    }

    boolean marked(long block) {
        return (bits[(int) (block >>> 6)] & (1L << block)) != 0;
    }

    /** The first marked block at or after from, or -1. */
    long next(long from) {
        if (from >= blocks) {
            return -1;
        }
        int w = (int) (from >>> 6);
        long word = bits[w] & (-1L << from);
        while (true) {
            if (word != 0) {
                long b = ((long) w << 6) + Long.numberOfTrailingZeros(word);
                return b < blocks ? b : -1;
            }
            if (++w == bits.length) {
                return -1;
            }
            word = bits[w];
        }
    }

    long count() {
        long n = 0;
        for (long w : bits) {
            n += Long.bitCount(w);
        }
        return n;
    }
}
