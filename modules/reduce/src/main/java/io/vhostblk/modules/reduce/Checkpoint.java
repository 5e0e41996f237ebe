package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One copy of the whole block map and reference counts, written alternately to area A and B. Its header block
 * names the generation and the last journal sequence it includes; a CRC over the payload detects a torn copy, in
 * which case the other area (older generation) and the journal after it are used.
 */
final class Checkpoint {

    static final byte[] MAGIC = "VHBLKCKP".getBytes(StandardCharsets.US_ASCII);
    private static final int HEADER_CRC_AT = 60;
    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Checkpoint() {
    }

    /** Bytes of the image a checkpoint of this volume takes: header block plus the payload rounded up to blocks. */
    static long bytes(Superblock sb) {
        return (1 + Superblock.ceilDiv(payloadBytes(sb), sb.blockSize())) * sb.blockSize();
    }

    static long payloadBytes(Superblock sb) {
        return sb.logicalBlocks() * 8 + sb.dataBlocks() * 4;
    }

    /** Serializes into {@code out} (at least {@link #bytes} long); {@code space} null writes all counts 0. */
    static void encode(Superblock sb, long generation, long journalSeq, long[] map, SpaceMap space, MemorySegment out) {
        int bs = sb.blockSize();
        MemorySegment header = out.asSlice(0, bs);
        header.fill((byte) 0);
        MemorySegment payload = out.asSlice(bs, bytes(sb) - bs);
        long mapBytes = sb.logicalBlocks() * 8;
        MemorySegment.copy(map, 0, payload, LONG_LE, 0, map.length);
        long used = payloadBytes(sb);
        if (space != null) {
            space.writeRefs(payload, mapBytes);
        } else {
            payload.asSlice(mapBytes, used - mapBytes).fill((byte) 0);
        }
        payload.asSlice(used).fill((byte) 0);
        MemorySegment.copy(MemorySegment.ofArray(MAGIC), 0, header, 0, 8);
        Le.putLong(header, 8, sb.uuid().getMostSignificantBits());
        Le.putLong(header, 16, sb.uuid().getLeastSignificantBits());
        Le.putLong(header, 24, generation);
        Le.putLong(header, 32, journalSeq);
        Le.putLong(header, 40, sb.logicalBlocks());
        Le.putLong(header, 48, sb.dataBlocks());
        Le.putInt(header, 56, crcOfPayload(payload, used));
        Le.putInt(header, HEADER_CRC_AT, Le.crc(header, 0, HEADER_CRC_AT, -1));
    }

    static int crcOfPayload(MemorySegment payload, long used) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        for (long at = 0; at < used; at += Integer.MAX_VALUE / 2) {
            crc.update(payload.asSlice(at, Math.min(Integer.MAX_VALUE / 2, used - at)).asByteBuffer());
        }
        return (int) crc.getValue();
    }

    /** The fields of a valid header, or the reason it is not one. */
    record Header(long generation, long journalSeq, int payloadCrc, String invalid) {
    }

    static Header decodeHeader(Superblock sb, MemorySegment header) {
        if (MemorySegment.mismatch(header, 0, 8, MemorySegment.ofArray(MAGIC), 0, 8) != -1) {
            return new Header(0, 0, 0, "no checkpoint magic");
        }
        if (Le.getInt(header, HEADER_CRC_AT) != Le.crc(header, 0, HEADER_CRC_AT, -1)) {
            return new Header(0, 0, 0, "header checksum mismatch");
        }
        if (Le.getLong(header, 8) != sb.uuid().getMostSignificantBits() || Le.getLong(header, 16) != sb.uuid().getLeastSignificantBits()) {
            return new Header(0, 0, 0, "belongs to another volume (UUID)");
        }
        if (Le.getLong(header, 40) != sb.logicalBlocks() || Le.getLong(header, 48) != sb.dataBlocks()) {
            return new Header(0, 0, 0, "sizes differ from the superblock");
        }
        long generation = Le.getLong(header, 24);
        long journalSeq = Le.getLong(header, 32);
        if (generation < 0 || journalSeq < 0 || journalSeq > Long.MAX_VALUE - Superblock.MAX_BLOCKS) {
            // Counters only ever grow from 0; out of range they would wrap the journal arithmetic.
            return new Header(0, 0, 0, "generation " + generation + " or journal sequence " + journalSeq + " out of range");
        }
        return new Header(generation, journalSeq, Le.getInt(header, 56), null);
    }

    /** Checks the payload against the header's CRC and fills map and refs; returns null or why it is invalid. */
    static String decodePayload(Superblock sb, Header h, MemorySegment payload, long[] map, int[] refs) {
        if (crcOfPayload(payload, payloadBytes(sb)) != h.payloadCrc()) {
            return "payload checksum mismatch (torn write?)";
        }
        MemorySegment.copy(payload, LONG_LE, 0, map, 0, map.length);
        MemorySegment.copy(payload, INT_LE, sb.logicalBlocks() * 8, refs, 0, refs.length);
        return null;
    }
}
