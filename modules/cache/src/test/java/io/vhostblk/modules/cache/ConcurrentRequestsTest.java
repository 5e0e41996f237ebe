package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reads, writes and discards of overlapping blocks in flight together, their disk operations completed in random
 * order, in every mode and with a cache smaller than the blocks used: afterwards the cache never returns data the
 * layers below do not hold (no fill installed stale data), and every block holds its old value or one written.
 */
class ConcurrentRequestsTest {

    private static final int BLOCKS = 48;

    @Test
    void noStaleDataInAnyMode() {
        for (CacheEngine.Mode mode : CacheEngine.Mode.values()) {
            for (int seed = 1; seed <= 5; seed++) {
                run(mode, seed);
            }
        }
    }

    private static void run(CacheEngine.Mode mode, int seed) {
        Random random = new Random(seed);
        Rig rig = Rig.fresh(40, BLOCKS, mode, new SimDisk.Power(Long.MAX_VALUE), Rig.deferred());
        int[] value = new int[BLOCKS];
        int next = 1;
        for (int round = 0; round < 40; round++) {
            List<Set<Integer>> allowed = new ArrayList<>();
            for (int b = 0; b < BLOCKS; b++) {
                Set<Integer> s = new HashSet<>();
                s.add(value[b]);
                allowed.add(s);
            }
            List<Rig.Guest> reads = new ArrayList<>();
            List<Integer> readAt = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                int b = random.nextInt(BLOCKS - 3);
                int n = 1 + random.nextInt(3);
                switch (random.nextInt(6)) {
                    case 0, 1, 2 -> {
                        reads.add(rig.read(b, n));
                        readAt.add(b);
                    }
                    case 3, 4 -> {
                        int v = next++ % 250 + 1;
                        rig.write(b, n, v);
                        for (int k = 0; k < n; k++) {
                            allowed.get(b + k).add(v);
                        }
                    }
                    default -> {
                        rig.submit(random.nextBoolean() ? BlockOp.DISCARD : BlockOp.WRITE_ZEROES, b, n, 0);
                        for (int k = 0; k < n; k++) {
                            allowed.get(b + k).add(0);
                        }
                    }
                }
                if (random.nextInt(4) == 0) {
                    rig.engine.tick();
                }
                for (int k = random.nextInt(4); k > 0 && !rig.pending.isEmpty(); k--) {
                    rig.pending.remove(random.nextInt(rig.pending.size())).run();
                }
            }
            rig.settle(random);
            for (int i = 0; i < reads.size(); i++) {
                Rig.Guest g = reads.get(i);
                assertTrue(g.done && g.result >= 0);
                for (int k = 0; k < g.request.length() / Rig.BS; k++) {
                    int b = readAt.get(i) + k;
                    assertTrue(allowed.get(b).contains(g.value(k)), mode + " seed " + seed + " round " + round + " block " + b
                            + ": read " + g.value(k) + ", allowed " + allowed.get(b));
                }
            }
            if (mode == CacheEngine.Mode.WRITE_BACK && random.nextBoolean()) {
                rig.drain();
            }
            for (int b = 0; b < BLOCKS; b++) {
                int through = rig.done(rig.read(b, 1)).value(0);
                assertTrue(allowed.get(b).contains(through), mode + " seed " + seed + " round " + round + " block " + b);
                if (mode != CacheEngine.Mode.WRITE_BACK || rig.engine.dirtyBlocks() == 0) {
                    assertEquals(rig.belowValue(b), through, mode + " seed " + seed + " round " + round + " block " + b
                            + ": the cache returns what is not below");
                }
                value[b] = through;
            }
        }
        assertTrue(rig.engine.hits > 0 && rig.engine.misses > 0 && (mode == CacheEngine.Mode.WRITE_AROUND || rig.engine.evictions > 0));
    }
}
