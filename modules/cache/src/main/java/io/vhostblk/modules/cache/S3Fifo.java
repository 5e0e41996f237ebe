package io.vhostblk.modules.cache;

/**
 * S3-FIFO eviction (Yang et al., SOSP 2023) over cache slots: a small FIFO {@code S} (a tenth of the slots)
 * that new blocks enter, a main FIFO {@code M}, and a ghost FIFO {@code G} of recently evicted block numbers.
 * A block leaves {@code S} for {@code M} if it was hit while in {@code S}, otherwise it is evicted and remembered
 * in {@code G}; a block found in {@code G} enters {@code M} directly. {@code M} is a CLOCK-like FIFO: a block with
 * hits left is reinserted with one hit fewer. One-hit wonders and scans pass through {@code S} without
 * displacing the working set. Queues are rings of preallocated arrays; a slot leaving the cache outside eviction
 * (invalidation) is dropped lazily by a generation number. Nothing is allocated after construction.
 * Single-threaded (the cache's owner loop).
 */
final class S3Fifo {

    /** Whether a slot may be evicted right now (clean, idle, not referenced by on-disk metadata). */
    @FunctionalInterface
    interface Evictable {
        boolean test(int slot);
    }

    private static final int MAX_FREQ = 3;
    private static final byte NONE = 0;
    private static final byte SMALL = 1;
    private static final byte MAIN = 2;

    private final int slots;
    private final int smallTarget;
    private final byte[] where;
    private final byte[] freq;
    private final int[] gen;
    private final long[] blockOf;
    private final Ring small;
    private final Ring main;
    private int smallSize;
    private int mainSize;
    // The ghost: recently evicted blocks, oldest first, and a table of the ones still remembered.
    private final long[] ghostBlocks;
    private final int[] ghostStamp;
    private final BlockTable ghost;
    private int ghostHead;
    private int ghostCount;
    private int stamp;

    S3Fifo(int slots) {
        this.slots = slots;
        this.smallTarget = Math.max(1, slots / 10);
        where = new byte[slots];
        freq = new byte[slots];
        gen = new int[slots];
        blockOf = new long[slots];
        small = new Ring(slots);
        main = new Ring(slots);
        ghostBlocks = new long[slots];
        ghostStamp = new int[slots];
        ghost = new BlockTable(slots);
    }

    /** {@code slot} now holds {@code block}. */
    void insert(int slot, long block) {
        if (where[slot] != NONE) {
            remove(slot);
        }
        blockOf[slot] = block;
        freq[slot] = 0;
        if (ghost.remove(block) >= 0) {
            where[slot] = MAIN;
            mainSize++;
            push(main, slot);
        } else {
            where[slot] = SMALL;
            smallSize++;
            push(small, slot);
        }
    }

    /** A hit on {@code slot}. */
    void touch(int slot) {
        if (freq[slot] < MAX_FREQ) {
            freq[slot]++;
        }
    }

    /** {@code slot} leaves the cache other than by eviction (invalidated); its queue entry is dropped lazily. */
    void remove(int slot) {
        if (where[slot] == SMALL) {
            smallSize--;
        } else if (where[slot] == MAIN) {
            mainSize--;
        }
        where[slot] = NONE;
        gen[slot]++;
    }

    /** Blocks resident (in {@code S} or {@code M}). */
    int resident() {
        return smallSize + mainSize;
    }

    /** Whether {@code block} is remembered in the ghost queue. */
    boolean inGhost(long block) {
        return ghost.get(block) >= 0;
    }

    /**
     * Chooses a resident slot to evict and takes it out of the queues, or returns -1 when none is evictable now
     * (every resident block dirty or in use). The caller drops the slot's block from its map.
     */
    int evict(Evictable evictable) {
        // Each resident slot is looked at a bounded number of times: frequencies only go down.
        int budget = 2 * (MAX_FREQ + 1) * (smallSize + mainSize) + 2;
        while (budget-- > 0 && smallSize + mainSize > 0) {
            boolean fromSmall = smallSize >= smallTarget || mainSize == 0;
            int slot = pop(fromSmall ? small : main, fromSmall ? SMALL : MAIN);
            if (slot < 0) {
                continue;
            }
            if (fromSmall) {
                smallSize--;
                if (freq[slot] > 0 || !evictable.test(slot)) {
                    // Hit while in S (or not evictable now): promoted to M.
                    freq[slot] = 0;
                    where[slot] = MAIN;
                    mainSize++;
                    push(main, slot);
                    continue;
                }
                rememberInGhost(blockOf[slot]);
            } else {
                if (freq[slot] > 0 || !evictable.test(slot)) {
                    if (freq[slot] > 0) {
                        freq[slot]--;
                    }
                    push(main, slot);
                    continue;
                }
                mainSize--;
            }
            where[slot] = NONE;
            gen[slot]++;
            return slot;
        }
        return -1;
    }

    private void rememberInGhost(long block) {
        if (ghostCount == slots) {
            // Forget the oldest, unless it was remembered again since (a newer stamp).
            long old = ghostBlocks[ghostHead];
            if (ghost.get(old) == ghostStamp[ghostHead]) {
                ghost.remove(old);
            }
            ghostHead = (ghostHead + 1) % slots;
            ghostCount--;
        }
        int at = (ghostHead + ghostCount) % slots;
        int s = stamp++ & Integer.MAX_VALUE;
        ghostBlocks[at] = block;
        ghostStamp[at] = s;
        ghostCount++;
        ghost.put(block, s);
    }

    private void push(Ring ring, int slot) {
        if (ring.count == ring.entries.length) {
            compact(ring, ring == small ? SMALL : MAIN);
        }
        ring.push(((long) gen[slot] << 32) | slot);
    }

    /** The oldest live entry of {@code ring}, or -1 if the popped entry was stale. */
    private int pop(Ring ring, byte queue) {
        if (ring.count == 0) {
            return -1;
        }
        long e = ring.pop();
        int slot = (int) e;
        return gen[slot] == (int) (e >>> 32) && where[slot] == queue ? slot : -1;
    }

    /** Drops stale entries; live ones number at most the slots, so there is room afterwards. */
    private void compact(Ring ring, byte queue) {
        int n = ring.count;
        for (int i = 0; i < n; i++) {
            long e = ring.pop();
            int slot = (int) e;
            if (gen[slot] == (int) (e >>> 32) && where[slot] == queue) {
                ring.push(e);
            }
        }
    }

    /** A FIFO of packed (generation, slot) entries. */
    private static final class Ring {
        final long[] entries;
        int head;
        int count;

        Ring(int capacity) {
            entries = new long[capacity];
        }

        void push(long e) {
            entries[(head + count) % entries.length] = e;
            count++;
        }

        long pop() {
            long e = entries[head];
            head = (head + 1) % entries.length;
            count--;
            return e;
        }
    }
}
