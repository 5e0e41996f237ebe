package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.logging.Level;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fuzzing the on-disk metadata readers with a fixed seed (every run checks the same inputs): a volume with
 * checkpoints, journal blocks after the checkpoint and packed blocks gets one region mutated — superblock,
 * checkpoint header or payload, journal block, packed block — by flipped bytes, fields set to edge values, zeroed or
 * random runs, and half the time its checksum recomputed so the damage reaches the checks behind it. Then
 * {@code reduce check}, the waiting open and the module's asynchronous open run on it, and an opened volume reads
 * every block. Each must answer: a report, a {@link ReduceException} with a reason, a read result (0 or an errno);
 * nothing else may be thrown. {@code -Dvhostblk.fuzz.iterations=N} runs more, {@code -Dvhostblk.fuzz.seed=S} others.
 */
class ReduceMetadataFuzzTest {
    private static final int ITERATIONS = Integer.getInteger("vhostblk.fuzz.iterations", 3_000);
    private static final long SEED = Long.getLong("vhostblk.fuzz.seed", 20261130);
    private static final int BS = 4096;
    private static final int LOGICAL_BLOCKS = 64;

    private enum Region { SUPERBLOCK, CHECKPOINT_HEADER, CHECKPOINT_PAYLOAD, JOURNAL, PACKED }

    private static final Arena ARENA = Arena.ofShared();
    private static MemorySegment pristine;
    private static Superblock sb;
    private static final List<Long> packedBlocks = new ArrayList<>();
    private static long journalBlocksWritten;
    /** Kept so the level stays set: the damage found is logged at ERROR per read, thousands of times. */
    private static Logger quiet;

    @BeforeAll
    static void volume() throws Exception {
        quiet = Logger.getLogger("io.vhostblk.modules.reduce");
        quiet.setLevel(Level.OFF);
        MemoryStore store = new MemoryStore(2L * LOGICAL_BLOCKS * BS + 64L * BS);
        ReduceVolume.format(store, new ReduceVolume.FormatOptions((long) LOGICAL_BLOCKS * BS, BS, Codec.LZ4, 16));
        try (ReduceVolume v = ReduceVolume.open(store, "fuzz", new ReduceVolume.Options(true, true, 64, 256), null, null, null, 8)) {
            // Whole, compressed (packed several per block through one multi-block write), shared and zero blocks,
            // then flushes: journal blocks after the opening checkpoint.
            Sync.ok(Sync.write(v, 0, ReduceVolumeTest.random(1, 4 * BS)));
            byte[] packable = new byte[6 * BS];
            for (int i = 0; i < 6; i++) {
                System.arraycopy(ReduceVolumeTest.compressible(10 + i, BS), 0, packable, i * BS, BS);
            }
            Sync.ok(Sync.write(v, 8L * BS, packable));
            Sync.ok(Sync.flush(v));
            Sync.ok(Sync.write(v, 20L * BS, ReduceVolumeTest.random(1, 4 * BS)));
            Sync.ok(Sync.write(v, 30L * BS, new byte[2 * BS]));
            Sync.ok(Sync.discard(v, 2L * BS, BS));
            Sync.ok(Sync.flush(v));
            journalBlocksWritten = v.counters().journalBlocksWritten;
        }
        pristine = ARENA.allocate(store.image.byteSize(), 4096);
        pristine.copyFrom(store.image);
        sb = VolumeState.readSuperblock(store, "fuzz");
        for (long b = 0; b < sb.dataBlocks(); b++) {
            if (Le.getInt(pristine, sb.offsetOf(sb.dataStart() + b)) == PackedBlock.MAGIC) {
                packedBlocks.add(b);
            }
        }
        assertTrue(!packedBlocks.isEmpty() && journalBlocksWritten >= 2,
                "the volume must have packed blocks and journal blocks to mutate: " + packedBlocks + ", " + journalBlocksWritten);
        assertTrue(ReduceCheck.run(new MemoryStore(copy(pristine)), "pristine").clean());
    }

    @AfterAll
    static void release() {
        ARENA.close();
        quiet.setLevel(null);
    }

    private static MemorySegment copy(MemorySegment from) {
        return Arena.ofAuto().allocate(from.byteSize(), 4096).copyFrom(from);
    }

    @Test
    void damagedMetadataIsRefusedOrReadNeverThrowsAnythingElse() {
        SplittableRandom random = new SplittableRandom(SEED);
        int[] outcomes = new int[4]; // opened, refused, check clean, check with problems
        int[] regions = new int[Region.values().length];
        long readErrors = 0;
        for (int i = 0; i < ITERATIONS; i++) {
            Region region = Region.values()[random.nextInt(Region.values().length)];
            regions[region.ordinal()]++;
            MemorySegment image = copy(pristine);
            boolean fixCrc = random.nextBoolean();
            String what = mutate(image, region, fixCrc, random);
            String where = "iteration " + i + " (seed " + SEED + "): " + region + " " + what + (fixCrc ? ", checksum fixed" : "");
            try {
                ReduceCheck.Report report = ReduceCheck.run(new MemoryStore(copy(image)), "fuzz");
                outcomes[report.clean() ? 2 : 3]++;
                ReduceVolume v = open(image, random.nextBoolean());
                if (v == null) {
                    outcomes[1]++;
                    continue;
                }
                outcomes[0]++;
                try (v) {
                    for (int b = 0; b < LOGICAL_BLOCKS; b++) {
                        int result = read(v, b);
                        if (result == Sync.PENDING || result > 0) {
                            fail(where + ": read of block " + b + " answered " + result);
                        }
                        readErrors += result < 0 ? 1 : 0;
                    }
                }
            } catch (RuntimeException | Error e) {
                throw new AssertionError(where + ": threw " + e, e);
            }
        }
        System.out.printf("ReduceMetadataFuzzTest: %d images (superblock %d, checkpoint header %d, checkpoint payload %d, "
                        + "journal %d, packed %d): %d opened, %d refused with a ReduceException; check clean %d, with problems %d; "
                        + "%d block reads answered an error%n", ITERATIONS, regions[0], regions[1], regions[2], regions[3], regions[4],
                outcomes[0], outcomes[1], outcomes[2], outcomes[3], readErrors);
        assertTrue(outcomes[0] > 0 && outcomes[1] > 0, "the generator must reach both opened and refused volumes");
    }

    /** Opens with the waiting or the asynchronous open; null if refused with a {@link ReduceException}. */
    private static ReduceVolume open(MemorySegment image, boolean async) {
        MemoryStore store = new MemoryStore(image);
        try {
            return async ? Sync.open(store, "fuzz", ReduceVolume.Options.both(), 0) : ReduceVolume.open(store, "fuzz", ReduceVolume.Options.both());
        } catch (ReduceException e) {
            assertTrue(e.getMessage() != null && e.getMessage().startsWith("fuzz"), "a refusal names the image: " + e.getMessage());
            return null;
        }
    }

    private static int read(ReduceVolume v, int block) {
        int[] result = {Sync.PENDING};
        v.read((long) block * BS, Arena.ofAuto().allocate(BS, 4096), r -> result[0] = r);
        return result[0];
    }

    /** Damages one region of {@code image}; returns what was done. */
    private static String mutate(MemorySegment image, Region region, boolean fixCrc, SplittableRandom random) {
        int area = random.nextInt(2);
        long start;
        long length;
        switch (region) {
            case SUPERBLOCK -> {
                start = 0;
                length = 128;
            }
            case CHECKPOINT_HEADER -> {
                start = sb.offsetOf(sb.checkpointStart(area));
                length = 64;
            }
            case CHECKPOINT_PAYLOAD -> {
                start = sb.offsetOf(sb.checkpointStart(area) + 1);
                length = Checkpoint.payloadBytes(sb);
            }
            case JOURNAL -> {
                start = sb.offsetOf(sb.journalStart() + 1 + random.nextLong(journalBlocksWritten + 1));
                length = JournalBlock.HEADER + 4L * JournalBlock.ENTRY;
            }
            default -> {
                start = sb.offsetOf(sb.dataStart() + packedBlocks.get(random.nextInt(packedBlocks.size())));
                length = BS;
            }
        }
        StringBuilder what = new StringBuilder("at " + start + ":");
        int n = 1 + random.nextInt(4);
        for (int k = 0; k < n; k++) {
            long at = start + random.nextLong(length);
            switch (random.nextInt(4)) {
                case 0 -> {
                    int bit = random.nextInt(8);
                    image.set(ValueLayout.JAVA_BYTE, at, (byte) (image.get(ValueLayout.JAVA_BYTE, at) ^ (1 << bit)));
                    what.append(" flip ").append(at).append('.').append(bit);
                }
                case 1 -> {
                    long field = start + (random.nextLong(length) & ~7L);
                    long[] edges = {0, 1, -1, Long.MAX_VALUE, Long.MIN_VALUE, Integer.MAX_VALUE, 0xffffffffL, BS, BS - 1,
                            LOGICAL_BLOCKS, sb.dataBlocks(), sb.physicalBlocks(), random.nextLong()};
                    long value = edges[random.nextInt(edges.length)];
                    int width = new int[] {1, 2, 4, 8}[random.nextInt(4)];
                    for (int b = 0; b < width && field + b < start + length; b++) {
                        image.set(ValueLayout.JAVA_BYTE, field + b, (byte) (value >>> (8 * b)));
                    }
                    what.append(" set ").append(field).append(':').append(width).append('=').append(value);
                }
                case 2 -> {
                    long len = Math.min(1 + random.nextInt(64), start + length - at);
                    image.asSlice(at, len).fill((byte) 0);
                    what.append(" zero ").append(at).append('+').append(len);
                }
                default -> {
                    long len = Math.min(1 + random.nextInt(64), start + length - at);
                    for (long b = 0; b < len; b++) {
                        image.set(ValueLayout.JAVA_BYTE, at + b, (byte) random.nextInt());
                    }
                    what.append(" random ").append(at).append('+').append(len);
                }
            }
        }
        if (fixCrc) {
            fixChecksum(image, region, area, start);
        }
        return what.toString();
    }

    /** Recomputes the region's checksum, so the damage is seen by the checks after it rather than by the CRC. */
    private static void fixChecksum(MemorySegment image, Region region, int area, long start) {
        switch (region) {
            case SUPERBLOCK -> Le.putInt(image, 96, Le.crc(image, 0, 96, -1));
            case CHECKPOINT_HEADER, CHECKPOINT_PAYLOAD -> {
                MemorySegment header = image.asSlice(sb.offsetOf(sb.checkpointStart(area)), BS);
                MemorySegment payload = image.asSlice(sb.offsetOf(sb.checkpointStart(area) + 1), Checkpoint.bytes(sb) - BS);
                Le.putInt(header, 56, Checkpoint.crcOfPayload(payload, Checkpoint.payloadBytes(sb)));
                Le.putInt(header, 60, Le.crc(header, 0, 60, -1));
            }
            case JOURNAL -> {
                MemorySegment block = image.asSlice(start, BS);
                Le.putInt(block, JournalBlock.CRC_AT, Le.crc(block, 0, BS, JournalBlock.CRC_AT));
            }
            default -> {
                // Packed blocks carry no checksum of their own.
            }
        }
    }
}
