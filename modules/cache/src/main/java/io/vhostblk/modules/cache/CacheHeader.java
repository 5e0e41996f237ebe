package io.vhostblk.modules.cache;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * The first 4 KiB of a cache device: what it caches (the volume's identity and size) and its geometry, with a
 * CRC32C over the rest so a torn or foreign header is refused rather than trusted. Layout (little-endian):
 * magic "VHBCACHE", version, block size, slots, metadata offset, data offset, backing capacity, format UUID,
 * volume identity (length-prefixed UTF-8), CRC32C of bytes 0..4091 at 4092.
 */
record CacheHeader(int blockSize, long slots, long backingCapacity, UUID uuid, String volume) {

    static final int SIZE = 4096;
    static final int ENTRY = 16;
    static final int VERSION = 1;
    static final long MAX_SLOTS = 1L << 24;
    private static final long MAGIC = 0x4548434143424856L; // "VHBCACHE" little-endian
    private static final int MAX_VOLUME = 1024;

    CacheHeader {
        if (volume.getBytes(StandardCharsets.UTF_8).length > MAX_VOLUME) {
            throw new IllegalArgumentException("volume identity longer than " + MAX_VOLUME + " bytes");
        }
    }

    /** Where the slot table starts. */
    long metadataOffset() {
        return SIZE;
    }

    /** Bytes of the slot table, whole 4 KiB pages. */
    long metadataBytes() {
        return (slots * ENTRY + 4095) / 4096 * 4096;
    }

    /** Where slot 0's data starts (aligned to the block size). */
    long dataOffset() {
        long end = metadataOffset() + metadataBytes();
        return (end + blockSize - 1) / blockSize * blockSize;
    }

    long slotOffset(int slot) {
        return dataOffset() + (long) slot * blockSize;
    }

    /** The geometry for a cache device of {@code deviceBytes}: as many slots as fit with their table entries. */
    static CacheHeader forDevice(long deviceBytes, int blockSize, long backingCapacity, String volume) throws CacheException {
        long slots = (deviceBytes - SIZE - blockSize) / (blockSize + ENTRY);
        if (slots < 1) {
            throw new CacheException("a cache of " + deviceBytes + " bytes holds no " + blockSize + "-byte block");
        }
        slots = Math.min(slots, MAX_SLOTS);
        CacheHeader h = new CacheHeader(blockSize, slots, backingCapacity, UUID.randomUUID(), volume);
        while (h.slotOffset((int) h.slots) > deviceBytes) {
            h = new CacheHeader(blockSize, h.slots - 1, backingCapacity, h.uuid, volume);
        }
        return h;
    }

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(blockSize).putLong(slots).putLong(metadataOffset()).putLong(dataOffset())
                .putLong(backingCapacity).putLong(uuid.getMostSignificantBits()).putLong(uuid.getLeastSignificantBits());
        byte[] v = volume.getBytes(StandardCharsets.UTF_8);
        b.putShort((short) v.length).put(v);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, SIZE - 4);
        b.putInt(SIZE - 4, (int) crc.getValue());
        return b.array();
    }

    /**
     * Reads a header; {@code where} names the device for errors. Returns null for a device that was never
     * formatted (an all-zero first block).
     */
    static CacheHeader decode(byte[] raw, String where) throws CacheException {
        boolean zero = true;
        for (byte x : raw) {
            if (x != 0) {
                zero = false;
                break;
            }
        }
        if (zero) {
            return null;
        }
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getLong(0) != MAGIC) {
            throw new CacheException(where + ": not a vhost-blk cache device (no cache header in its first block); "
                    + "refusing to overwrite it (format it with: vhost-blk cache format " + where + " ...)");
        }
        CRC32C crc = new CRC32C();
        crc.update(raw, 0, SIZE - 4);
        if ((int) crc.getValue() != b.getInt(SIZE - 4)) {
            throw new CacheException(where + ": the cache header is torn or corrupt (checksum mismatch); refusing it");
        }
        int version = b.getInt(8);
        if (version != VERSION) {
            throw new CacheException(where + ": cache format version " + version + ", this module reads " + VERSION);
        }
        int blockSize = b.getInt(12);
        long slots = b.getLong(16);
        long backing = b.getLong(40);
        UUID uuid = new UUID(b.getLong(48), b.getLong(56));
        int len = Short.toUnsignedInt(b.getShort(64));
        if (blockSize < 512 || Integer.bitCount(blockSize) != 1 || slots < 1 || slots > MAX_SLOTS || len > MAX_VOLUME) {
            throw new CacheException(where + ": the cache header has impossible values (block size " + blockSize
                    + ", slots " + slots + ")");
        }
        String volume = new String(raw, 66, len, StandardCharsets.UTF_8);
        CacheHeader h = new CacheHeader(blockSize, slots, backing, uuid, volume);
        if (b.getLong(24) != h.metadataOffset() || b.getLong(32) != h.dataOffset()) {
            throw new CacheException(where + ": the cache header's layout does not match its geometry");
        }
        return h;
    }

    /** Refuses a header made for another volume, another size or another block size. */
    void checkFor(String where, String volume, long backingCapacity, int blockSize) throws CacheException {
        if (!this.volume.equals(volume) || this.backingCapacity != backingCapacity) {
            throw new CacheException(where + ": this cache belongs to volume '" + this.volume + "' of " + this.backingCapacity
                    + " bytes, not to '" + volume + "' of " + backingCapacity + " bytes; refusing it (its dirty blocks "
                    + "belong to that volume: vhost-blk cache flush " + where + " IMAGE writes them back)");
        }
        if (this.blockSize != blockSize) {
            throw new CacheException(where + ": the cache was formatted with " + this.blockSize + "-byte blocks, the "
                    + "policy asks for " + blockSize);
        }
    }
}
