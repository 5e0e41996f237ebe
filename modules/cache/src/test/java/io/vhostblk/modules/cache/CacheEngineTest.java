package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CacheEngineTest {

    private static final SimDisk.Power ON = new SimDisk.Power(Long.MAX_VALUE);

    @Test
    void writeThroughWritesBelowAndServesTheReadFromTheCache() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_THROUGH, ON, null);
        rig.done(rig.write(10, 2, 7));
        assertEquals(7, rig.belowValue(10));
        assertEquals(7, rig.belowValue(11));
        long belowReads = rig.below.reads;
        Rig.Guest g = rig.done(rig.read(10, 2));
        assertEquals(7, g.value(0));
        assertEquals(7, g.value(1));
        assertEquals(belowReads, rig.below.reads, "a hit must not read below");
        assertEquals(2, rig.engine.hits);
    }

    @Test
    void aMissFillsTheCacheAndTheNextReadHits() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_THROUGH, ON, null);
        rig.below.current.asSlice(5 * Rig.BS, Rig.BS).fill((byte) 3);
        assertEquals(3, rig.done(rig.read(5, 1)).value(0));
        assertEquals(1, rig.engine.misses);
        long belowReads = rig.below.reads;
        assertEquals(3, rig.done(rig.read(5, 1)).value(0));
        assertEquals(belowReads, rig.below.reads);
        assertEquals(1, rig.engine.hits);
    }

    @Test
    void writeAroundDropsTheCachedCopy() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_AROUND, ON, null);
        rig.done(rig.read(4, 1));
        rig.done(rig.write(4, 1, 9));
        assertEquals(9, rig.belowValue(4));
        assertEquals(0, rig.engine.residentBlocks());
        assertEquals(9, rig.done(rig.read(4, 1)).value(0));
    }

    @Test
    void writeBackAcknowledgesOnTheCacheAndWritesBackOnDrain() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_BACK, ON, null);
        rig.done(rig.write(20, 3, 5));
        assertEquals(0, rig.below.writes, "a write-back write must not go below");
        assertEquals(3, rig.engine.dirtyBlocks());
        assertEquals(5, rig.done(rig.read(20, 3)).value(2));
        rig.drain();
        assertEquals(0, rig.engine.dirtyBlocks());
        for (int b = 20; b < 23; b++) {
            assertEquals(5, rig.belowValue(b));
        }
    }

    @Test
    void aReadMixingMissesAndDirtyBlocksReturnsTheDirtyData() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_BACK, ON, null);
        rig.below.current.asSlice(30L * Rig.BS, 4L * Rig.BS).fill((byte) 1);
        rig.done(rig.write(31, 1, 8));
        Rig.Guest g = rig.done(rig.read(30, 4));
        assertEquals(1, g.value(0));
        assertEquals(8, g.value(1));
        assertEquals(1, g.value(2));
    }

    @Test
    void discardAndWriteZeroesDropCachedAndDirtyBlocks() {
        for (BlockOp op : new BlockOp[]{BlockOp.DISCARD, BlockOp.WRITE_ZEROES}) {
            Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_BACK, ON, null);
            rig.done(rig.write(40, 2, 6));
            rig.done(rig.submit(op, 40, 2, 0));
            assertEquals(0, rig.engine.dirtyBlocks());
            assertEquals(0, rig.done(rig.read(40, 2)).value(1), op + " must invalidate");
            rig.drain();
            assertEquals(0, rig.belowValue(40), op + ": no write-back of discarded data");
        }
    }

    @Test
    void writeBackFlushCommitsTheSlotTable() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_BACK, ON, null);
        rig.done(rig.write(7, 1, 4));
        long before = rig.cache.flushes;
        rig.done(rig.flush());
        assertTrue(rig.cache.flushes >= before + 2, "data flushed, then the table, then flushed again");
        assertEquals(1, rig.engine.commits);
    }

    @Test
    void aFullCacheEvictsAndKeepsServingCorrectData() {
        Rig rig = Rig.fresh(40, 1024, CacheEngine.Mode.WRITE_THROUGH, ON, null);
        for (int b = 0; b < 200; b++) {
            rig.done(rig.write(b, 1, b % 250 + 1));
        }
        assertTrue(rig.engine.evictions > 0);
        for (int b = 0; b < 200; b++) {
            assertEquals(b % 250 + 1, rig.done(rig.read(b, 1)).value(0), "block " + b);
        }
    }

    @Test
    void writeBackWaitsForWriteBackWhenEverySlotIsDirty() {
        Rig rig = Rig.fresh(40, 1024, CacheEngine.Mode.WRITE_BACK, ON, null);
        for (int b = 0; b < 40; b++) {
            rig.done(rig.write(b, 1, 2));
        }
        Rig.Guest late = rig.write(100, 1, 3);
        assertTrue(!late.done, "no clean slot: the write waits");
        for (int i = 0; i < 100 && !late.done; i++) {
            rig.engine.tick();
        }
        assertTrue(late.done);
        assertEquals(3, rig.done(rig.read(100, 1)).value(0));
        assertEquals(2, rig.belowValue(0));
    }

    @Test
    void unalignedRequestsFail() {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_THROUGH, ON, null);
        Rig.Guest g = rig.read(0, 1);
        rig.settle(null);
        assertEquals(Rig.BS, g.result);
        io.vhostblk.drivers.BlockRequest r = new io.vhostblk.drivers.BlockRequest(900, "d", 0);
        java.lang.foreign.MemorySegment buf = java.lang.foreign.Arena.ofAuto().allocate(512);
        r.set(BlockOp.READ, 512, 512, new io.vhostblk.drivers.IoVector(1).wrap(buf, 0, 512, true), false);
        Rig.Guest bad = new Rig.Guest(r, buf);
        rig.engine.serve(r, bad);
        assertTrue(bad.done);
        assertEquals(-Errno.EIO, bad.result);
    }

    @Test
    void theLastCommitAfterTheLoopStoppedKeepsEveryAcknowledgedWrite() throws Exception {
        Rig rig = Rig.fresh(64, 256, CacheEngine.Mode.WRITE_BACK, ON, null);
        rig.done(rig.write(1, 1, 11));
        rig.done(rig.flush());
        rig.done(rig.write(2, 1, 12)); // acknowledged, no FLUSH after it
        rig.done(rig.write(3, 1, 13));
        java.lang.foreign.MemorySegment image = rig.cache.imageAfterCrash(new java.util.Random(1));
        rig.engine.commitStopped(new CacheEngine.TableWriter() {
            @Override
            public void syncData() {
                image.copyFrom(rig.cache.current);
            }

            @Override
            public void writeTable(long offset, byte[] table) {
                java.lang.foreign.MemorySegment.copy(table, 0, image, java.lang.foreign.ValueLayout.JAVA_BYTE, offset, table.length);
            }
        });
        // Nothing was written back: the layers below hold none of it.
        java.lang.foreign.MemorySegment belowImage = rig.below.imageAfterCrash(new java.util.Random(2));
        assertEquals(0, rig.below.writes);
        Rig after = Rig.reopen(image, belowImage, CacheEngine.Mode.WRITE_BACK, ON, null);
        assertEquals(3, after.engine.dirtyBlocks());
        after.drain();
        assertEquals(11, after.belowValue(1));
        assertEquals(12, after.belowValue(2));
        assertEquals(13, after.belowValue(3));
        assertEquals(13, after.done(after.read(3, 1)).value(0));
    }
}
