package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Replay of hand-made journal blocks over a formatted volume: what counts as the journal and what ends it. */
class JournalReplayTest {

    private static final int BS = 4096;

    private final MemoryStore store = new MemoryStore(64L * BS);
    private final Superblock sb;

    JournalReplayTest() throws ReduceException {
        ReduceVolume.format(store, new ReduceVolume.FormatOptions(16L * BS, BS, Codec.LZ4, 8));
        sb = VolumeState.readSuperblock(store, "j");
    }

    /** Writes journal block {@code seq} of checkpoint generation {@code gen}: logical block i maps to data block i. */
    private void journal(long gen, long seq, long... logical) {
        MemorySegment b = Arena.ofAuto().allocate(BS);
        JournalBlock.clear(b);
        for (long l : logical) {
            JournalBlock.add(b, l, Mapping.whole(l));
        }
        JournalBlock.seal(b, sb.uuid(), gen, seq);
        MemorySegment.copy(b, 0, store.image, sb.offsetOf(sb.journalStart() + seq % sb.journalBlocks()), BS);
    }

    @Test
    void consecutiveBlocksOfTheCheckpointsGenerationAreReplayed() throws Exception {
        journal(1, 1, 0, 1);
        journal(1, 2, 2);
        VolumeState s = VolumeState.load(store, "j");
        assertEquals(2, s.replayedBlocks);
        assertEquals(3, s.replayedEntries);
        assertEquals(Mapping.whole(2), s.map[2]);
        assertEquals(1, s.refs[1]);
    }

    @Test
    void aMissingBlockEndsTheJournalEvenIfLaterOnesLanded() throws Exception {
        journal(1, 1, 0);
        journal(1, 3, 3); // seq 2 never landed: 3 must not be replayed
        VolumeState s = VolumeState.load(store, "j");
        assertEquals(1, s.replayedBlocks);
        assertEquals(Mapping.UNMAPPED, s.map[3]);
    }

    @Test
    void blocksOfAnotherGenerationOrVolumeOrWithABadChecksumAreNotReplayed() throws Exception {
        journal(0, 1, 0); // written before the checkpoint the volume opens from
        assertEquals(0, VolumeState.load(store, "j").replayedBlocks);
        journal(1, 1, 0);
        long at = sb.offsetOf(sb.journalStart() + 1) + JournalBlock.HEADER + 3;
        store.image.set(java.lang.foreign.ValueLayout.JAVA_BYTE, at, (byte) 0x55); // torn entry
        assertEquals(0, VolumeState.load(store, "j").replayedBlocks);
    }

    @Test
    void aWellFormedEntryOutsideTheVolumeRefusesToOpen() throws Exception {
        MemorySegment b = Arena.ofAuto().allocate(BS);
        JournalBlock.clear(b);
        JournalBlock.add(b, 99, Mapping.whole(0)); // logical block 99 of 16
        JournalBlock.seal(b, sb.uuid(), 1, 1);
        MemorySegment.copy(b, 0, store.image, sb.offsetOf(sb.journalStart() + 1), BS);
        ReduceException e = assertThrows(ReduceException.class, () -> VolumeState.load(store, "img"));
        assertTrue(e.getMessage().contains("journal block 1 entry 0: logical block 99 beyond the volume"), e.getMessage());
    }

    @Test
    void theNewerValidCheckpointWinsAndATornOneFallsBackToTheOther() throws Exception {
        try (ReduceVolume v = ReduceVolume.open(store, "j", ReduceVolume.Options.both())) {
            Sync.ok(Sync.write(v, 0, ReduceVolumeTest.random(1, BS)));
            Sync.ok(Sync.flush(v));
        }
        VolumeState s = VolumeState.load(store, "j");
        long newest = s.generation;
        int area = s.area;
        // Tear the newest checkpoint's payload: the other area (one generation older) and its journal are used.
        long payload = sb.offsetOf(sb.checkpointStart(area) + 1);
        store.image.set(java.lang.foreign.ValueLayout.JAVA_BYTE, payload, (byte) 0x7f);
        VolumeState older = VolumeState.load(store, "j");
        assertEquals(newest - 1, older.generation);
        assertTrue(older.notes.stream().anyMatch(n -> n.contains("payload checksum mismatch")), older.notes.toString());
    }
}
