package io.vhostblk.modules.reduce;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Many requests in flight at once, their backing I/O completing in random order: writes to different sectors of the
 * same block (read-modify-write under the block lock), reads of blocks being rewritten (pinned old data), shared
 * and packed blocks, discards and flushes. After each round the volume must read exactly the model, and after all
 * rounds reopen to it with {@code check} clean.
 */
class ConcurrentRequestsTest {

    private static final int BS = 4096;
    private static final int SECTOR = 512;
    private static final int BLOCKS = 48;

    @ParameterizedTest
    @ValueSource(longs = {11, 12, 13, 14})
    void outOfOrderCompletionsKeepEveryRequestsData(long seed) throws Exception {
        MemoryStore formatted = new MemoryStore(120L * BS);
        ReduceVolume.format(formatted, new ReduceVolume.FormatOptions((long) BLOCKS * BS, BS, Codec.LZ4, 8));
        ShuffledStore store = new ShuffledStore(formatted.image, seed);
        ReduceVolume.Options options = new ReduceVolume.Options(true, true, 20, 512);
        byte[] model = new byte[BLOCKS * BS];
        Random r = new Random(seed);
        long packedBefore;
        try (ReduceVolume v = ReduceVolume.open(store, "c", options, null, null, null, 4)) {
            store.shuffle();
            for (int round = 0; round < 30; round++) {
                List<int[]> busy = new ArrayList<>();
                List<Runnable> checks = new ArrayList<>();
                int[] completed = {0};
                int issued = 0;
                for (int k = 0; k < 12; k++) {
                    int kind = r.nextInt(10);
                    int sectors = kind < 2 ? 1 + r.nextInt(6) : 8 * (1 + r.nextInt(4));
                    int first = kind < 2 ? r.nextInt(BLOCKS * 8 - sectors) : 8 * r.nextInt(BLOCKS - sectors / 8);
                    if (overlaps(busy, first, sectors)) {
                        continue;
                    }
                    busy.add(new int[] {first, sectors});
                    long offset = (long) first * SECTOR;
                    int length = sectors * SECTOR;
                    issued++;
                    if (kind == 9) {
                        // A read of data nobody is writing: must see the model, even while its block is rewritten.
                        MemorySegment into = Arena.ofAuto().allocate(length, 4096);
                        byte[] expect = Arrays.copyOfRange(model, (int) offset, (int) offset + length);
                        v.read(offset, into, result -> {
                            assertEquals(0, result);
                            completed[0]++;
                            checks.add(() -> assertArrayEquals(expect, into.toArray(ValueLayout.JAVA_BYTE), "read at " + offset));
                        });
                    } else if (kind == 8) {
                        Arrays.fill(model, (int) offset, (int) offset + length, (byte) 0);
                        v.discard(offset, length, result -> {
                            assertEquals(0, result);
                            completed[0]++;
                        });
                    } else {
                        byte[] data = switch (r.nextInt(3)) {
                            case 0 -> ReduceVolumeTest.compressible(r.nextInt(6), length); // often identical: dedup
                            case 1 -> ReduceVolumeTest.compressible(seed * 100 + round * 20 + k, length);
                            default -> ReduceVolumeTest.random(seed * 100 + round * 20 + k, length);
                        };
                        System.arraycopy(data, 0, model, (int) offset, length);
                        MemorySegment from = Arena.ofAuto().allocate(length, 4096);
                        MemorySegment.copy(MemorySegment.ofArray(data), 0, from, 0, length);
                        v.write(offset, from, result -> {
                            assertEquals(0, result, "write at " + offset);
                            completed[0]++;
                        });
                    }
                    if (r.nextInt(6) == 0) {
                        issued++;
                        v.flush(result -> {
                            assertEquals(0, result);
                            completed[0]++;
                        });
                    }
                    for (int s = r.nextInt(4); s > 0 && store.step(); s--) {
                        // let some I/O finish while more requests arrive
                    }
                }
                store.drain();
                assertEquals(issued, completed[0], "every request completed");
                checks.forEach(Runnable::run);
                MemorySegment all = Arena.ofAuto().allocate((long) BLOCKS * BS, 4096);
                int[] result = {Sync.PENDING};
                v.read(0, all, x -> result[0] = x);
                store.drain();
                assertEquals(0, result[0]);
                assertArrayEquals(model, all.toArray(ValueLayout.JAVA_BYTE), "round " + round);
            }
            int[] flushed = {Sync.PENDING};
            v.flush(x -> flushed[0] = x);
            store.drain();
            assertEquals(0, flushed[0]);
            packedBefore = v.counters().packedBlocksWritten();
            assertTrue(v.counters().compressedBlocks() > packedBefore, "concurrent fragments shared packed blocks");
            assertTrue(v.counters().dedupHits() > 0, "identical blocks were shared");
        }
        MemoryStore plain = new MemoryStore(store.image);
        Sync.clean(ReduceCheck.run(plain, "c"));
        try (ReduceVolume v = ReduceVolume.open(plain, "c", options)) {
            assertArrayEquals(model, Sync.read(v, 0, BLOCKS * BS));
        }
    }

    /** A block being read is not reused, even when the block is rewritten, committed and space runs short. */
    @org.junit.jupiter.api.Test
    void aBlockBeingReadIsNeverReusedUnderTheRead() throws Exception {
        MemoryStore formatted = new MemoryStore(12L * BS);
        ReduceVolume.format(formatted, new ReduceVolume.FormatOptions(4L * BS, BS, Codec.LZ4, 4));
        ShuffledStore store = new ShuffledStore(formatted.image, 1);
        ReduceVolume.Options plain = new ReduceVolume.Options(false, false, 20, 16);
        try (ReduceVolume v = ReduceVolume.open(store, "pin", plain)) {
            assertEquals(3L * BS, v.physicalBytesFree(), "three data blocks");
            store.shuffle();
            byte[] old = ReduceVolumeTest.random(1, BS);
            int[] results = new int[6];
            Arrays.fill(results, Sync.PENDING);
            MemorySegment into = Arena.ofAuto().allocate(BS, 4096);
            v.write(0, segment(old), x -> results[0] = x);
            v.flush(x -> results[1] = x);
            store.drain();
            store.holdReads();
            v.read(0, into, x -> results[2] = x);          // in flight on the old block
            v.write(0, segment(ReduceVolumeTest.random(2, BS)), x -> results[3] = x);
            v.flush(x -> results[4] = x);                  // the old block loses its last reference, durably
            store.drain();
            v.write(BS, segment(ReduceVolumeTest.random(3, BS)), x -> { });
            v.write(2L * BS, segment(ReduceVolumeTest.random(4, BS)), x -> results[5] = x); // no block but the read one
            store.drain();
            store.releaseReads();
            store.drain();
            assertEquals(0, results[2]);
            assertArrayEquals(old, into.toArray(ValueLayout.JAVA_BYTE), "the read got the data it asked for");
            assertEquals(Errno.ENOSPC, results[5], "the only other block was under a read");
        }
    }

    private static MemorySegment segment(byte[] data) {
        MemorySegment s = Arena.ofAuto().allocate(data.length, 4096);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, s, 0, data.length);
        return s;
    }

    private static boolean overlaps(List<int[]> busy, int first, int sectors) {
        for (int[] b : busy) {
            if (first < b[0] + b[1] && b[0] < first + sectors) {
                return true;
            }
        }
        return false;
    }
}
