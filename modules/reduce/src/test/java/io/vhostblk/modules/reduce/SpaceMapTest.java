package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The allocator's states: free, reserved, live, pending free until the commit, pinned. */
class SpaceMapTest {

    @Test
    void allocatesEachFreeBlockOnceThenRunsOut() {
        SpaceMap m = new SpaceMap(70);
        m.rebuild(new long[0]);
        boolean[] seen = new boolean[70];
        for (int i = 0; i < 70; i++) {
            long b = m.allocate(false);
            assertFalse(seen[(int) b], "block " + b + " given twice");
            seen[(int) b] = true;
        }
        assertEquals(-1, m.allocate(false));
        m.unreserve(33);
        assertEquals(33, m.allocate(true));
        assertTrue(m.isPacked(33));
    }

    @Test
    void aFreedBlockIsReusedOnlyAfterItsCommit() {
        SpaceMap m = new SpaceMap(2);
        m.rebuild(new long[0]);
        long a = m.allocate(false);
        long b = m.allocate(false);
        m.ref(a);
        m.ref(b);
        m.unref(a);                    // unmapped in memory, not yet durably
        assertEquals(-1, m.allocate(false));
        assertTrue(m.hasPending());
        m.sealPending();               // a commit starts
        LongList freed = new LongList();
        m.takeCommitted(freed);        // ... and is durable
        assertEquals(1, freed.size());
        assertEquals(a, freed.get(0));
        assertEquals(-1, m.allocate(false), "not before its hole is punched");
        m.unreserve(a);
        assertEquals(a, m.allocate(false));
    }

    @Test
    void aPinnedBlockWaitsForTheUnpin() {
        SpaceMap m = new SpaceMap(1);
        m.rebuild(new long[0]);
        long a = m.allocate(false);
        m.ref(a);
        m.pin(a);
        m.unref(a);
        assertFalse(m.hasPending(), "a reader still uses it");
        assertFalse(m.isLive(a), "but nothing may share it");
        m.unpin(a);
        assertTrue(m.hasPending());
    }

    @Test
    void referenceCountsSurviveAsTheCheckpointWritesThem() {
        SpaceMap m = new SpaceMap(3);
        long[] map = {Mapping.whole(0), Mapping.whole(0), Mapping.fragment(2, 5)};
        m.load(VolumeState.countRefs(map, 3), map);
        assertEquals(2, m.refs(0));
        assertEquals(1, m.refs(2));
        assertTrue(m.isPacked(2));
        assertEquals(1, m.freeBlocks());
        m.pin(0);
        java.lang.foreign.MemorySegment out = java.lang.foreign.Arena.ofAuto().allocate(12);
        m.writeRefs(out, 0);
        assertEquals(2, Le.getInt(out, 0), "pins are not stored");
    }
}
