package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;

/**
 * A data block holding up to {@link #MAX_FRAGMENTS} compressed blocks: a {@link #HEADER}-byte header (magic, codec,
 * fragment count, then offset and length of each fragment) followed by the fragments. Written as data, so it is
 * durable before any map entry points at it.
 */
final class PackedBlock {

    static final int MAGIC = 0x4b505a52; // "RZPK"
    static final int MAX_FRAGMENTS = 14;
    static final int HEADER = 8 + MAX_FRAGMENTS * 4;

    private PackedBlock() {
    }

    /** The largest fragment worth compressing: two must fit in one block, or nothing is saved. */
    static int maxFragment(int blockSize) {
        return (blockSize - HEADER) / 2;
    }

    static void start(MemorySegment block, Codec codec) {
        block.fill((byte) 0);
        Le.putInt(block, 0, MAGIC);
        block.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 4, (byte) codec.id);
    }

    static int count(MemorySegment block) {
        return Byte.toUnsignedInt(block.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 5));
    }

    /** Appends a fragment's header entry (its bytes are already at {@code offset}); returns its slot. */
    static int add(MemorySegment block, int offset, int length) {
        int slot = count(block);
        Le.putU16(block, 8 + slot * 4, offset);
        Le.putU16(block, 8 + slot * 4 + 2, length);
        block.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 5, (byte) (slot + 1));
        return slot;
    }

    static int offset(MemorySegment block, int slot) {
        return Le.getU16(block, 8 + slot * 4);
    }

    static int length(MemorySegment block, int slot) {
        return Le.getU16(block, 8 + slot * 4 + 2);
    }

    /** Why the header cannot serve {@code slot}, or null if it can. */
    static String invalid(MemorySegment block, int slot, int blockSize) {
        if (Le.getInt(block, 0) != MAGIC) {
            return "packed block magic missing";
        }
        int codec = Byte.toUnsignedInt(block.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 4));
        if (codec != Codec.LZ4.id && codec != Codec.ZSTD.id) {
            return "packed block codec " + codec + " unknown";
        }
        int count = count(block);
        if (count > MAX_FRAGMENTS || slot >= count) {
            return "fragment " + slot + " beyond the packed block's " + count + " fragments";
        }
        int off = offset(block, slot);
        int len = length(block, slot);
        if (off < HEADER || len == 0 || off + len > blockSize) {
            return "fragment " + slot + " at " + off + "+" + len + " outside the block";
        }
        return null;
    }

    static Codec codec(MemorySegment block) {
        return Codec.of(Byte.toUnsignedInt(block.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 4)));
    }
}
