package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * One block of the journal ring: a 64-byte header (magic, volume UUID, checkpoint generation, sequence number,
 * entry count, CRC-32C of the whole block) and 16-byte entries {@code (logical block, new mapping)}. Block with
 * sequence {@code s} lives in ring slot {@code s % journalBlocks}.
 */
final class JournalBlock {

    static final byte[] MAGIC = "VHBLKJNL".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER = 64;
    static final int ENTRY = 16;
    private static final int COUNT_AT = 40;
    static final int CRC_AT = 44;

    private JournalBlock() {
    }

    static int capacity(int blockSize) {
        return (blockSize - HEADER) / ENTRY;
    }

    static void clear(MemorySegment block) {
        block.fill((byte) 0);
    }

    static int count(MemorySegment block) {
        return Le.getInt(block, COUNT_AT);
    }

    static void add(MemorySegment block, long logical, long mapping) {
        int n = count(block);
        Le.putLong(block, HEADER + (long) n * ENTRY, logical);
        Le.putLong(block, HEADER + (long) n * ENTRY + 8, mapping);
        Le.putInt(block, COUNT_AT, n + 1);
    }

    static long logical(MemorySegment block, int i) {
        return Le.getLong(block, HEADER + (long) i * ENTRY);
    }

    static long mapping(MemorySegment block, int i) {
        return Le.getLong(block, HEADER + (long) i * ENTRY + 8);
    }

    /** Stamps identity and checksum just before the block is written. */
    static void seal(MemorySegment block, UUID uuid, long generation, long seq) {
        MemorySegment.copy(MemorySegment.ofArray(MAGIC), 0, block, 0, 8);
        Le.putLong(block, 8, uuid.getMostSignificantBits());
        Le.putLong(block, 16, uuid.getLeastSignificantBits());
        Le.putLong(block, 24, generation);
        Le.putLong(block, 32, seq);
        Le.putInt(block, CRC_AT, Le.crc(block, 0, block.byteSize(), CRC_AT));
    }

    /** True if the block is the one with this sequence number written after checkpoint {@code generation}. */
    static boolean isExactly(MemorySegment block, UUID uuid, long generation, long seq) {
        return MemorySegment.mismatch(block, 0, 8, MemorySegment.ofArray(MAGIC), 0, 8) == -1
                && Le.getLong(block, 8) == uuid.getMostSignificantBits()
                && Le.getLong(block, 16) == uuid.getLeastSignificantBits()
                && Le.getLong(block, 24) == generation
                && Le.getLong(block, 32) == seq
                && count(block) >= 0 && count(block) <= capacity((int) block.byteSize())
                && Le.getInt(block, CRC_AT) == Le.crc(block, 0, block.byteSize(), CRC_AT);
    }
}
