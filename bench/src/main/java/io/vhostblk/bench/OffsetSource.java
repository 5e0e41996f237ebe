package io.vhostblk.bench;

import java.util.SplittableRandom;

/** The next block a queue addresses: uniformly random over the span, or a sequential stream that wraps. */
final class OffsetSource {
    private final boolean random;
    private final long blocks;
    private final SplittableRandom rnd;
    private long cursor;

    /** Queue {@code queue} of {@code queues}: sequential streams start evenly spread over the span. */
    OffsetSource(boolean random, long blocks, int queue, int queues, long seed) {
        this.random = random;
        this.blocks = blocks;
        this.rnd = new SplittableRandom(seed * 0x9e3779b97f4a7c15L + queue);
        this.cursor = blocks / queues * queue;
    }

    /** The next block index in [0, blocks). */
    long next() {
        if (random) {
            return rnd.nextLong(blocks);
        }
        long b = cursor;
        cursor = b + 1 == blocks ? 0 : b + 1;
        return b;
    }

    /** A percentage draw for mixed jobs: true with probability percent/100. */
    boolean chance(int percent) {
        return rnd.nextInt(100) < percent;
    }
}
