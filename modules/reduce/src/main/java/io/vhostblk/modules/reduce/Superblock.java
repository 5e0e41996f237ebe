package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * Block 0 of a reduce volume: identity, sizes and where each region lives (see docs/reduce.md). All offsets are
 * in blocks of {@link #blockSize}. Regions in order: superblock, checkpoint A, checkpoint B, journal, data.
 */
record Superblock(int blockSize, UUID uuid, long logicalBlocks, long physicalBlocks, Codec codec,
                  long checkpointBlocks, long journalBlocks) {

    static final byte[] MAGIC = "VHBLKRED".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    static final int MIN_BLOCK_SIZE = 4096;
    static final int MAX_BLOCK_SIZE = 32768;
    private static final int CRC_AT = 96;

    static final int MIN_JOURNAL_BLOCKS = 4;
    static final long MAX_BLOCKS = Integer.MAX_VALUE - 64;

    Superblock {
        if (Integer.bitCount(blockSize) != 1 || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
            throw new IllegalArgumentException("block size " + blockSize + " is not a power of two in "
                    + MIN_BLOCK_SIZE + ".." + MAX_BLOCK_SIZE);
        }
        if (logicalBlocks <= 0) {
            throw new IllegalArgumentException("logical size must be at least one block");
        }
        if (journalBlocks < MIN_JOURNAL_BLOCKS) {
            throw new IllegalArgumentException("journal needs at least " + MIN_JOURNAL_BLOCKS + " blocks");
        }
    }

    /** The layout for a new volume: the checkpoint sized for the map and counts, the journal for ~1/256 of data. */
    static Superblock plan(int blockSize, long logicalBytes, long physicalBytes, Codec codec, long journalBlocks) {
        if (logicalBytes % blockSize != 0) {
            throw new IllegalArgumentException("logical size " + logicalBytes + " is not a multiple of the block size " + blockSize);
        }
        long logical = logicalBytes / blockSize;
        long physical = physicalBytes / blockSize;
        if (logical > MAX_BLOCKS || physical > MAX_BLOCKS) {
            // The map and the reference counts are Java arrays, fully in memory (docs/reduce.md, Memory).
            throw new IllegalArgumentException("at most " + MAX_BLOCKS + " blocks (" + (MAX_BLOCKS * blockSize >> 40)
                    + " TiB with " + blockSize + "-byte blocks) of logical and of physical size");
        }
        // Checkpoint: header block + 8 B per logical block + 4 B per physical block (an upper bound on data blocks).
        long checkpoint = 1 + ceilDiv(logical * 8 + physical * 4, blockSize);
        long journal = journalBlocks > 0 ? journalBlocks : Math.clamp(physical / 256, 64, 8192);
        Superblock sb = new Superblock(blockSize, UUID.randomUUID(), logical, physical, codec, checkpoint, journal);
        if (sb.dataBlocks() < 1) {
            throw new IllegalArgumentException("physical size " + physicalBytes + " leaves no room for data after "
                    + sb.dataStart() + " blocks of metadata");
        }
        return sb;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    long checkpointStart(int area) {
        return 1 + area * checkpointBlocks;
    }

    long journalStart() {
        return 1 + 2 * checkpointBlocks;
    }

    long dataStart() {
        return journalStart() + journalBlocks;
    }

    long dataBlocks() {
        return physicalBlocks - dataStart();
    }

    long logicalBytes() {
        return logicalBlocks * blockSize;
    }

    /** Byte offset of a block number of the image. */
    long offsetOf(long block) {
        return block * blockSize;
    }

    void encode(MemorySegment b) {
        b.fill((byte) 0);
        MemorySegment.copy(MemorySegment.ofArray(MAGIC), 0, b, 0, 8);
        Le.putInt(b, 8, VERSION);
        Le.putInt(b, 12, blockSize);
        Le.putLong(b, 16, uuid.getMostSignificantBits());
        Le.putLong(b, 24, uuid.getLeastSignificantBits());
        Le.putLong(b, 32, logicalBlocks);
        Le.putLong(b, 40, physicalBlocks);
        Le.putInt(b, 48, codec.id);
        Le.putLong(b, 56, checkpointBlocks);
        Le.putLong(b, 64, journalBlocks);
        Le.putInt(b, CRC_AT, Le.crc(b, 0, CRC_AT, -1));
    }

    /** Decodes block 0; the message names the field that is wrong. */
    static Superblock decode(MemorySegment b, String image) throws ReduceException {
        if (MemorySegment.mismatch(b, 0, 8, MemorySegment.ofArray(MAGIC), 0, 8) != -1) {
            throw new ReduceException(image + ": superblock magic: not a reduce volume (expected VHBLKRED at offset 0)");
        }
        int crc = Le.getInt(b, CRC_AT);
        if (crc != Le.crc(b, 0, CRC_AT, -1)) {
            throw new ReduceException(image + ": superblock checksum: stored " + Integer.toHexString(crc)
                    + ", computed " + Integer.toHexString(Le.crc(b, 0, CRC_AT, -1)));
        }
        int version = Le.getInt(b, 8);
        if (version != VERSION) {
            throw new ReduceException(image + ": superblock version: " + version + " (this build reads " + VERSION + ")");
        }
        Superblock sb;
        try {
            sb = new Superblock(Le.getInt(b, 12), new UUID(Le.getLong(b, 16), Le.getLong(b, 24)), Le.getLong(b, 32),
                    Le.getLong(b, 40), Codec.of(Le.getInt(b, 48)), Le.getLong(b, 56), Le.getLong(b, 64));
        } catch (IllegalArgumentException e) {
            throw new ReduceException(image + ": superblock: " + e.getMessage());
        }
        if (sb.logicalBlocks > MAX_BLOCKS || sb.physicalBlocks > MAX_BLOCKS) {
            throw new ReduceException(image + ": superblock sizes: " + sb.logicalBlocks + " logical, " + sb.physicalBlocks
                    + " physical blocks; this build handles at most " + MAX_BLOCKS);
        }
        if (sb.checkpointBlocks < 1 || sb.checkpointBlocks > MAX_BLOCKS || sb.journalBlocks > MAX_BLOCKS) {
            // Bounded before any region arithmetic: a damaged size must not overflow into a plausible layout.
            throw new ReduceException(image + ": superblock region sizes: " + sb.checkpointBlocks + " checkpoint, "
                    + sb.journalBlocks + " journal blocks");
        }
        if (sb.physicalBlocks <= sb.dataStart()) {
            throw new ReduceException(image + ": superblock physical size: " + sb.physicalBlocks
                    + " blocks, no data area after " + sb.dataStart() + " blocks of metadata");
        }
        if (sb.checkpointBlocks < 1 + ceilDiv(sb.logicalBlocks * 8 + sb.dataBlocks() * 4, sb.blockSize)) {
            throw new ReduceException(image + ": superblock checkpoint size: " + sb.checkpointBlocks
                    + " blocks cannot hold the map of " + sb.logicalBlocks + " blocks");
        }
        return sb;
    }
}
