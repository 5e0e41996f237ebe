package io.vhostblk.modules.cache;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class S3FifoTest {

    /** A cache of {@code slots} driven by block accesses through the policy, counting hits. */
    private static final class Sim {
        final S3Fifo policy;
        final Map<Long, Integer> slotOf = new HashMap<>();
        final long[] blockOf;
        final boolean[] pinned;
        int free;
        long hits;

        Sim(int slots) {
            policy = new S3Fifo(slots);
            blockOf = new long[slots];
            pinned = new boolean[slots];
            free = slots;
        }

        void access(long block) {
            Integer s = slotOf.get(block);
            if (s != null) {
                hits++;
                policy.touch(s);
                return;
            }
            int slot;
            if (free > 0) {
                slot = --free;
            } else {
                slot = policy.evict(x -> !pinned[x]);
                assertTrue(slot >= 0);
                slotOf.remove(blockOf[slot]);
            }
            blockOf[slot] = block;
            slotOf.put(block, slot);
            policy.insert(slot, block);
        }
    }

    @Test
    void aScanDoesNotFlushTheWorkingSet() {
        Sim sim = new Sim(100);
        for (int round = 0; round < 5; round++) {
            for (long b = 0; b < 50; b++) {
                sim.access(b);
            }
        }
        for (long b = 1000; b < 11000; b++) {
            sim.access(b); // a one-pass scan ten times the cache
        }
        long before = sim.hits;
        for (long b = 0; b < 50; b++) {
            sim.access(b);
        }
        assertEquals(50, sim.hits - before, "the hot blocks survive the scan");
    }

    @Test
    void aBlockSeenAgainSoonAfterEvictionGoesToTheMainQueue() {
        Sim sim = new Sim(20);
        sim.access(7);
        for (long b = 100; b < 126; b++) {
            sim.access(b);
        }
        assertTrue(sim.policy.inGhost(7), "evicted from the small queue into the ghost");
        sim.access(7);
        assertTrue(!sim.policy.inGhost(7));
        for (long b = 200; b < 210; b++) {
            sim.access(b); // fewer than the main queue holds
        }
        long before = sim.hits;
        sim.access(7);
        assertEquals(1, sim.hits - before, "admitted to M, it outlives newer one-hit blocks");
    }

    @Test
    void nothingEvictableMeansNoVictim() {
        Sim sim = new Sim(10);
        for (long b = 0; b < 10; b++) {
            sim.access(b);
        }
        java.util.Arrays.fill(sim.pinned, true);
        assertEquals(-1, sim.policy.evict(x -> !sim.pinned[x]));
        assertEquals(10, sim.policy.resident(), "a failed eviction keeps every block");
        sim.pinned[3] = false;
        int victim = sim.policy.evict(x -> !sim.pinned[x]);
        assertEquals(3, victim);
    }

    @Test
    void removedSlotsAreNeverChosenAndTheQueuesDoNotOverflow() {
        S3Fifo p = new S3Fifo(8);
        for (int round = 0; round < 1000; round++) {
            int s = round % 8;
            p.insert(s, round);
            if (round % 3 == 0) {
                p.remove(s);
            }
        }
        int resident = p.resident();
        for (int i = 0; i < resident; i++) {
            assertTrue(p.evict(x -> true) >= 0);
        }
        assertEquals(-1, p.evict(x -> true));
    }
}
