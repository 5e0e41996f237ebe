package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;

import static io.vhostblk.modules.reduce.Sync.ok;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReduceVolumeTest {

    static final int BS = 4096;
    static final ReduceVolume.Options BOTH = new ReduceVolume.Options(true, true, 32, 1024);

    static MemoryStore formatted(long logicalBlocks, long physicalBytes, Codec codec, long journalBlocks) throws ReduceException {
        MemoryStore store = new MemoryStore(physicalBytes);
        ReduceVolume.format(store, new ReduceVolume.FormatOptions(logicalBlocks * BS, BS, codec, journalBlocks));
        return store;
    }

    static byte[] random(long seed, int length) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Text-like data that LZ4 shrinks to well under half a block, different for each seed. */
    static byte[] compressible(long seed, int length) {
        byte[] b = new byte[length];
        byte[] word = ("block " + seed + " of the reduce test; ").getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < length; i++) {
            b[i] = word[i % word.length];
        }
        return b;
    }

    @Test
    void newVolumeReadsZerosAndHasTheLogicalSize() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            assertEquals(64L * BS, v.logicalSize());
            assertArrayEquals(new byte[2 * BS], Sync.read(v, 10L * BS, 2 * BS));
            assertEquals(0, v.physicalBytesUsed());
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void writesReadBackAcrossReopenAndPartialBlocks() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        byte[] a = random(1, 3 * BS);
        byte[] b = compressible(2, BS);
        byte[] sectors = random(3, 3 * 512);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, a));
            ok(Sync.write(v, 5L * BS, b));
            ok(Sync.write(v, 5L * BS + 1024, sectors));   // inside a compressed block
            ok(Sync.write(v, 2L * BS + 3584, random(4, 1024))); // across a block boundary, unmapped on one side
            ok(Sync.flush(v));
        }
        byte[] expectA = a.clone();
        byte[] expectB = b.clone();
        System.arraycopy(sectors, 0, expectB, 1024, sectors.length);
        byte[] tail = random(4, 1024);
        System.arraycopy(tail, 0, expectA, 2 * BS + 3584, 512);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            assertArrayEquals(expectA, Sync.read(v, 0, 3 * BS));
            assertArrayEquals(expectB, Sync.read(v, 5L * BS, BS));
            assertArrayEquals(Arrays.copyOfRange(tail, 512, 1024), Sync.read(v, 3L * BS, 512));
            assertArrayEquals(Arrays.copyOfRange(expectA, 1024, 1024 + 3 * 512), Sync.read(v, 1024, 3 * 512));
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void allZeroBlocksCostNothing() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, new byte[8 * BS]));
            assertEquals(0, v.mappedBlocks());
            assertEquals(0, v.physicalBytesUsed());
            assertEquals(8, v.counters().zeroBlocks());
        }
    }

    @Test
    void identicalBlocksAreStoredOnce() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        byte[] block = random(7, BS);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH.withCompress(false))) {
            for (int i = 0; i < 10; i++) {
                ok(Sync.write(v, (long) i * BS, block));
            }
            assertEquals(10, v.mappedBlocks());
            assertEquals(BS, v.physicalBytesUsed());
            assertEquals(9, v.counters().dedupHits());
            ok(Sync.flush(v));
        }
        ReduceCheck.Report r = ReduceCheck.run(store, "t");
        Sync.clean(r);
        assertEquals(1, r.usage().liveBlocks());
        assertEquals(9, r.usage().sharedReferences());
    }

    @Test
    void withoutDedupIdenticalBlocksTakeTheirOwnSpace() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        byte[] block = random(7, BS);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH.withDedup(false).withCompress(false))) {
            for (int i = 0; i < 4; i++) {
                ok(Sync.write(v, (long) i * BS, block));
            }
            assertEquals(4L * BS, v.physicalBytesUsed());
            assertEquals(0, v.counters().dedupHits());
        }
    }

    /** Every block gets the same fingerprint: only a byte compare can tell them apart. */
    @Test
    void blocksWithTheSameFingerprintButDifferentBytesAreNotShared() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        ReduceVolume.Fingerprint collide = (block, out) -> {
            out[0] = 42;
            out[1] = 43;
        };
        byte[] x = random(1, BS);
        byte[] y = random(2, BS);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH.withCompress(false), collide)) {
            ok(Sync.write(v, 0, x));
            ok(Sync.write(v, BS, y));
            ok(Sync.write(v, 2L * BS, x)); // index now points at y's block: must not share
            assertArrayEquals(x, Sync.read(v, 0, BS));
            assertArrayEquals(y, Sync.read(v, BS, BS));
            assertArrayEquals(x, Sync.read(v, 2L * BS, BS));
            assertEquals(0, v.counters().dedupHits());
            assertEquals(2, v.counters().dedupCompareMismatches());
            ok(Sync.write(v, 3L * BS, x)); // index points at x's latest copy: same bytes, shared
            assertEquals(1, v.counters().dedupHits());
            assertArrayEquals(x, Sync.read(v, 3L * BS, BS));
        }
    }

    @Test
    void compressedBlocksArePackedManyToABlock() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        byte[] data = new byte[14 * BS];
        for (int i = 0; i < 14; i++) {
            System.arraycopy(compressible(100 + i, BS), 0, data, i * BS, BS);
        }
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH.withDedup(false))) {
            ok(Sync.write(v, 0, data));
            assertEquals(14, v.counters().compressedBlocks());
            assertEquals(1, v.counters().packedBlocksWritten());
            assertEquals(BS, v.physicalBytesUsed());
            assertArrayEquals(data, Sync.read(v, 0, 14 * BS));
            ok(Sync.flush(v));
        }
        ReduceCheck.Report r = ReduceCheck.run(store, "t");
        Sync.clean(r);
        assertEquals(14, r.usage().fragments());
        assertEquals(1, r.usage().packedBlocks());
        assertEquals(14.0, r.usage().reduction());
    }

    @Test
    void incompressibleBlocksAreStoredWhole() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, random(9, 4 * BS)));
            assertEquals(0, v.counters().compressedBlocks());
            assertEquals(4, v.counters().wholeBlocksWritten());
        }
    }

    @Test
    void zstdVolumesCompressToo() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.ZSTD, 8);
        byte[] data = compressible(5, 4 * BS);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, data));
            assertEquals(4, v.counters().compressedBlocks());
            ok(Sync.flush(v));
        }
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            assertArrayEquals(data, Sync.read(v, 0, 4 * BS));
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void keptBlocksAreWrittenBeforeHolesAndPunchedBeyondTheLimit() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, random(1, 4 * BS)));
            ok(Sync.flush(v));
            ok(Sync.write(v, 0, random(2, 4 * BS)));
            ok(Sync.flush(v));
            assertEquals(4L, v.report().get("free_blocks_kept"));
            ok(Sync.write(v, 8L * BS, random(3, 3 * BS)));
            assertEquals(1L, v.report().get("free_blocks_kept"), "new data goes to kept blocks first");
            assertArrayEquals(random(2, 4 * BS), Sync.read(v, 0, 4 * BS));
            assertArrayEquals(random(3, 3 * BS), Sync.read(v, 8L * BS, 3 * BS));
            // More frees than the limit (1/32 of the data area) are punched even when writes allocated as many.
            long limit = v.physicalBytesFree() / BS / SpaceMap.KEEP_FRACTION + 1;
            byte[] big = random(4, (int) (limit + 8) * BS);
            ok(Sync.write(v, 16L * BS, big));
            ok(Sync.flush(v));
            ok(Sync.write(v, 16L * BS, random(5, big.length)));
            ok(Sync.flush(v));
            assertTrue((long) v.report().get("free_blocks_kept") <= limit, v.report().toString());
            assertTrue(store.deallocatedBytes >= 8L * BS, "frees beyond the limit punched: " + store.deallocatedBytes);
            assertArrayEquals(random(5, big.length), Sync.read(v, 16L * BS, big.length));
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void overwriteAndDiscardGiveSpaceBackAfterTheCommit() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            long free = v.physicalBytesFree();
            ok(Sync.write(v, 0, random(1, 4 * BS)));
            ok(Sync.flush(v));
            ok(Sync.write(v, 0, random(2, 4 * BS)));
            assertEquals(4L * BS, v.physicalBytesUsed());
            assertEquals(free - 8L * BS, v.physicalBytesFree(), "old blocks stay reserved until the overwrite is durable");
            ok(Sync.flush(v));
            assertEquals(free - 4L * BS, v.physicalBytesFree());
            // Overwrites allocated as many blocks as they freed: the freed ones stay backed for the next writes.
            assertEquals(0, store.deallocatedBytes, "blocks freed by overwrites are kept, not punched");
            assertEquals(4L, v.report().get("free_blocks_kept"));
            ok(Sync.discard(v, 0, 2L * BS));
            ok(Sync.zero(v, 2L * BS, 2L * BS));
            ok(Sync.flush(v));
            // Discards allocate nothing: what they free goes back to the store.
            assertEquals(4L * BS, store.deallocatedBytes, "blocks freed by discards are punched");
            assertEquals(free, v.physicalBytesFree());
            assertEquals(0, v.mappedBlocks());
            assertArrayEquals(new byte[4 * BS], Sync.read(v, 0, 4 * BS));
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void fullVolumeFailsWritesWithNoSpaceAndRecovers() throws Exception {
        MemoryStore store = formatted(256, 200L * BS, Codec.LZ4, 4);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            long capacity = v.physicalBytesFree() / BS;
            int i = 0;
            int result = 0;
            while (i < 256 && (result = Sync.write(v, (long) i * BS, random(1000 + i, BS))) == 0) {
                i++;
            }
            assertEquals(Errno.ENOSPC, result);
            assertEquals(capacity, i);
            assertArrayEquals(random(1000, BS), Sync.read(v, 0, BS));
            ok(Sync.discard(v, 0, 4L * BS));
            ok(Sync.write(v, (long) i * BS, random(1000 + i, BS))); // waits for the commit that frees the discarded blocks
            assertArrayEquals(random(1000 + i, BS), Sync.read(v, (long) i * BS, BS));
            ok(Sync.flush(v));
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void manyCommitsWrapTheJournalAndCheckpoint() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 4);
        byte[][] last = new byte[64][];
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            for (int round = 0; round < 40; round++) {
                for (int j = 0; j < 5; j++) {
                    int lba = (round * 7 + j * 13) % 64;
                    last[lba] = round % 2 == 0 ? random(round * 100 + j, BS) : compressible(round * 100 + j, BS);
                    ok(Sync.write(v, (long) lba * BS, last[lba]));
                }
                ok(Sync.flush(v));
            }
            assertTrue(v.counters().checkpointsWritten() > 2, "checkpoints: " + v.counters().checkpointsWritten());
            assertTrue(v.counters().journalBlocksWritten() > 10, "journal blocks: " + v.counters().journalBlocksWritten());
        }
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            for (int lba = 0; lba < 64; lba++) {
                assertArrayEquals(last[lba] == null ? new byte[BS] : last[lba], Sync.read(v, (long) lba * BS, BS), "block " + lba);
            }
        }
        Sync.clean(ReduceCheck.run(store, "t"));
    }

    @Test
    void flushWithNothingNewCostsNoCommit() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, random(1, BS)));
            ok(Sync.flush(v));
            long commits = v.counters().commits();
            ok(Sync.flush(v));
            assertEquals(commits, v.counters().commits());
        }
    }

    @Test
    void badRequestsAreRefusedWithEinval() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            assertEquals(Errno.EINVAL, Sync.write(v, 100, new byte[512]));
            assertEquals(Errno.EINVAL, Sync.write(v, 0, new byte[100]));
            assertEquals(Errno.EINVAL, Sync.write(v, 64L * BS, new byte[512]));
            assertEquals(Errno.EINVAL, Sync.discard(v, 63L * BS, 2L * BS));
            ok(Sync.write(v, 63L * BS + 3584, new byte[512]));
        }
    }

    @Test
    void damagedSuperblockIsReportedByField() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        store.image.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 33, (byte) 7); // inside the logical size
        ReduceException e = assertThrows(ReduceException.class, () -> ReduceVolume.open(store, "img", BOTH));
        assertTrue(e.getMessage().startsWith("img: superblock checksum"), e.getMessage());
        MemoryStore blank = new MemoryStore(1 << 20);
        e = assertThrows(ReduceException.class, () -> ReduceVolume.open(blank, "img", BOTH));
        assertTrue(e.getMessage().contains("superblock magic"), e.getMessage());
        ReduceCheck.Report r = ReduceCheck.run(blank, "img");
        assertTrue(!r.clean() && r.problems().get(0).contains("not a reduce volume"), r.problems().toString());
    }

    @Test
    void checkFindsWrongReferenceCountsAndDamagedFragments() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, compressible(1, 2 * BS)));
            ok(Sync.flush(v));
        }
        Sync.clean(ReduceCheck.run(store, "t"));
        // The data area starts after superblock, two checkpoints and the journal: damage the packed block's header.
        VolumeState s = VolumeState.load(store, "t");
        long packedAt = s.sb.offsetOf(s.sb.dataStart() + Mapping.dataBlock(s.map[0]));
        store.image.set(java.lang.foreign.ValueLayout.JAVA_BYTE, packedAt + 8, (byte) 1); // fragment 0 offset inside header
        ReduceCheck.Report r = ReduceCheck.run(store, "t");
        assertTrue(r.problems().stream().anyMatch(p -> p.contains("fragment 0")), r.problems().toString());
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            assertEquals(Errno.EIO, readResult(v, 0));
            assertArrayEquals(Arrays.copyOfRange(compressible(1, 2 * BS), BS, 2 * BS), Sync.read(v, BS, BS)); // fragment 1 intact
        }
    }

    private static int readResult(ReduceVolume v, long offset) {
        int[] r = {Sync.PENDING};
        v.read(offset, java.lang.foreign.Arena.ofAuto().allocate(BS), x -> r[0] = x);
        return r[0];
    }

    @Test
    void countersTrackWhatWasWritten() throws Exception {
        MemoryStore store = formatted(64, 1 << 20, Codec.LZ4, 8);
        try (ReduceVolume v = ReduceVolume.open(store, "t", BOTH)) {
            ok(Sync.write(v, 0, compressible(1, BS)));
            ok(Sync.write(v, BS, compressible(1, BS)));
            ok(Sync.flush(v));
            ReduceCounters c = v.counters();
            assertEquals(2L * BS, c.logicalBytesWritten());
            assertEquals(1, c.dedupHits());
            assertEquals(1, c.compressedBlocks());
            assertNotEquals(0, c.compressedBytes());
            assertEquals(1, c.flushRequests());
            assertTrue(c.commits() >= 1);
            java.util.Map<String, Object> report = v.report();
            assertEquals(2L * BS, report.get("logical_bytes_mapped"));
            assertEquals((long) BS, report.get("physical_bytes_used"));
            assertEquals(2.0, report.get("reduction_ratio"));
            assertEquals((double) BS / c.compressedBytes(), report.get("compression_ratio"));
            assertEquals(1L, report.get("dedup_hits"));
        }
    }
}
