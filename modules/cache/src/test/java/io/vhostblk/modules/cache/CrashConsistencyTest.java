package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A write-back cache loses power at every step of a random workload (writes, discards, FLUSHes, background
 * write-back and commits, completions in random order), and its disks keep any subset of their unflushed sectors.
 * After reopening and writing back, every block reads a value it may hold: the last write acknowledged before
 * the last completed FLUSH began, or a write after that; never another block's data or a torn mix of values.
 */
class CrashConsistencyTest {

    // Fewer slots than blocks: slots are evicted and reused, so a reused slot's old entry matters.
    private static final int BLOCKS = 64;
    private static final int SLOTS = 40;
    private static final int OPS = 80;
    /** Every slot of a fresh cache device holds this, so an entry pointing at unwritten data shows. */
    private static final int GARBAGE = 0xEE;

    /** What the scenario did, for the check after a crash. */
    private static final class History {
        /** Per block, values by write: value, completed-at (or -1 in flight). */
        final List<List<long[]>> writes = new ArrayList<>();
        long clock;
        /** When the last completed FLUSH was issued. */
        long flushedUpTo = -1;

        History() {
            for (int b = 0; b < BLOCKS; b++) {
                List<long[]> l = new ArrayList<>();
                l.add(new long[]{initial(b), -2}); // the image's initial data, durable before anything
                writes.add(l);
            }
        }

        Set<Integer> allowed(int block) {
            Set<Integer> ok = new HashSet<>();
            long[] lastDurable = null;
            for (long[] w : writes.get(block)) {
                if (w[1] != -1 && w[1] <= flushedUpTo || w[1] == -2) {
                    lastDurable = w; // completed before that FLUSH was issued
                } else {
                    ok.add((int) w[0]); // completed after it, or still in flight
                }
            }
            ok.add((int) lastDurable[0]);
            return ok;
        }
    }

    /** Runs the workload until power is lost (or it ends); returns the history. */
    private static History run(Rig rig, Random random, SimDisk.Power power) {
        History h = new History();
        boolean[] busyBlock = new boolean[BLOCKS];
        int value = 100;
        int issued = 0;
        List<Runnable> checks = new ArrayList<>();
        while ((issued < OPS || !rig.pending.isEmpty()) && !power.lost) {
            int choice = random.nextInt(10);
            if (issued < OPS && choice < 5) {
                int b = random.nextInt(BLOCKS - 1);
                int n = 1 + random.nextInt(2);
                if (!busyBlock[b] && !busyBlock[b + n - 1]) {
                    issued++;
                    boolean discard = random.nextInt(6) == 0;
                    int v = discard ? 0 : value++;
                    if (value > 230) {
                        value = 100;
                    }
                    long[][] recs = new long[n][];
                    for (int i = 0; i < n; i++) {
                        busyBlock[b + i] = true;
                        recs[i] = new long[]{v, -1};
                        h.writes.get(b + i).add(recs[i]);
                    }
                    Rig.Guest g = discard ? rig.submit(random.nextBoolean() ? BlockOp.DISCARD : BlockOp.WRITE_ZEROES, b, n, 0)
                            : rig.write(b, n, v);
                    int first = b;
                    checks.add(() -> {
                        if (g.done && recs[0][1] == -1 && g.result >= 0) {
                            for (int i = 0; i < n; i++) {
                                recs[i][1] = h.clock;
                                busyBlock[first + i] = false;
                            }
                        }
                    });
                }
            } else if (issued < OPS && choice == 5) {
                issued++;
                long at = h.clock;
                Rig.Guest g = rig.flush();
                boolean[] seen = {false};
                checks.add(() -> {
                    if (g.done && !seen[0] && g.result >= 0) {
                        seen[0] = true;
                        h.flushedUpTo = Math.max(h.flushedUpTo, at);
                    }
                });
            } else if (choice == 6) {
                rig.engine.tick();
            } else if (!rig.pending.isEmpty()) {
                rig.pending.remove(random.nextInt(rig.pending.size())).run();
            }
            h.clock++;
            for (Runnable c : checks) {
                c.run();
            }
        }
        return h;
    }

    @Test
    void flushedWritesSurviveACrashAtEveryStep() throws Exception {
        for (int seed = 1; seed <= 4; seed++) {
            SimDisk.Power uncut = new SimDisk.Power(Long.MAX_VALUE);
            Rig r = prepared(uncut);
            Rig counted = Rig.reopen(r.cache.current, r.below.current, CacheEngine.Mode.WRITE_BACK, uncut, Rig.deferred());
            run(counted, new Random(seed), uncut);
            long steps = uncut.steps;
            assertTrue(steps > 20, "the workload writes");
            for (long crashAfter = 0; crashAfter <= steps; crashAfter++) {
                crashAndCheck(seed, crashAfter);
            }
        }
    }

    private static int initial(int block) {
        return block % 90 + 1;
    }

    /** A fresh cache whose slots hold garbage, over an image whose blocks hold their initial values. */
    private static Rig prepared(SimDisk.Power power) {
        Rig rig = Rig.fresh(SLOTS, BLOCKS, CacheEngine.Mode.WRITE_BACK, power, Rig.deferred());
        rig.cache.current.asSlice(rig.header.dataOffset()).fill((byte) GARBAGE);
        for (int b = 0; b < BLOCKS; b++) {
            rig.below.current.asSlice((long) b * Rig.BS, Rig.BS).fill((byte) initial(b));
        }
        return rig;
    }

    private static void crashAndCheck(int seed, long crashAfter) throws CacheException {
        SimDisk.Power power = new SimDisk.Power(crashAfter);
        // The cache's header is formatted before the power can fail.
        Rig rig = prepared(new SimDisk.Power(Long.MAX_VALUE));
        Rig live = Rig.reopen(rig.cache.current, rig.below.current, CacheEngine.Mode.WRITE_BACK, power, Rig.deferred());
        History h = run(live, new Random(seed), power);
        Random crash = new Random(seed * 1000L + crashAfter);
        MemorySegment cacheImage = live.cache.imageAfterCrash(crash);
        MemorySegment belowImage = live.below.imageAfterCrash(crash);
        Rig after = Rig.reopen(cacheImage, belowImage, CacheEngine.Mode.WRITE_BACK, new SimDisk.Power(Long.MAX_VALUE), null);
        after.drain();
        String where = "seed " + seed + ", crash after step " + crashAfter + ", block ";
        for (int b = 0; b < BLOCKS; b++) {
            Set<Integer> ok = h.allowed(b);
            int read = after.done(after.read(b, 1)).value(0);
            assertTrue(read >= 0 && ok.contains(read), where + b + ": read " + read + ", allowed " + ok);
            int below = after.belowValue(b);
            assertEquals(read, below, where + b + ": after write-back the image below must hold what the cache returns");
        }
    }
}
