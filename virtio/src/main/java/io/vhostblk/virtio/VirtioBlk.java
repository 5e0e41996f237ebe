package io.vhostblk.virtio;

/** virtio-blk constants (feature bits, request types, status codes) and small range helpers. */
public final class VirtioBlk {
    /** Virtio device ID of a block device. */
    public static final int DEVICE_ID = 2;

    // Device feature bit numbers (use 1L << bit).
    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_GEOMETRY = 4;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_TOPOLOGY = 10;
    public static final int F_CONFIG_WCE = 11;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;
    public static final int F_LIFETIME = 15;
    public static final int F_SECURE_ERASE = 16;

    // Ring and transport feature bit numbers.
    public static final int F_RING_INDIRECT_DESC = 28;
    public static final int F_RING_EVENT_IDX = 29;
    public static final int F_VERSION_1 = 32;
    /** VIRTIO_F_RING_PACKED: the packed virtqueue layout. */
    public static final int F_RING_PACKED = 34;

    // Request types (virtio_blk_outhdr.type).
    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_GET_LIFETIME = 10;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;
    public static final int T_SECURE_ERASE = 14;

    // Status byte values.
    public static final byte S_OK = 0;
    public static final byte S_IOERR = 1;
    public static final byte S_UNSUPP = 2;

    /** Length of the GET_ID serial string (NUL-padded, not necessarily NUL-terminated). */
    public static final int ID_BYTES = 20;
    /** Request header: type u32, ioprio u32, sector u64. */
    public static final int HEADER_BYTES = 16;
    /** virtio-blk sectors are always 512 bytes, whatever blk_size says. */
    public static final int SECTOR_SIZE = 512;
    public static final int SECTOR_SHIFT = 9;
    /** A discard / write-zeroes / secure-erase segment: sector u64, num_sectors u32, flags u32. */
    public static final int RANGE_SEGMENT_BYTES = 16;
    /** Segment flag: write-zeroes may unmap (deallocate) the range. */
    public static final int RANGE_FLAG_UNMAP = 1;
    /** struct virtio_blk_lifetime: three u16 fields. */
    public static final int LIFETIME_BYTES = 6;

    private VirtioBlk() {
    }

    /** Feature mask of one bit number. */
    public static long bit(int featureBit) {
        return 1L << featureBit;
    }

    /**
     * Whether bytes starting at sector lie inside a disk of capacitySectors sectors; overflow-safe
     * for any input (a negative value, i.e. a u64 with the top bit set, is never inside).
     * A partial trailing sector counts as a whole one.
     */
    public static boolean withinCapacity(long sector, long bytes, long capacitySectors) {
        if (sector < 0 || bytes < 0 || capacitySectors < 0 || sector > capacitySectors) {
            return false;
        }
        long sectors = (bytes >>> SECTOR_SHIFT) + ((bytes & (SECTOR_SIZE - 1)) != 0 ? 1 : 0);
        return sectors <= capacitySectors - sector;
    }

    /** A readable name of a request type, for logs. */
    public static String typeName(int type) {
        return switch (type) {
            case T_IN -> "IN";
            case T_OUT -> "OUT";
            case T_FLUSH -> "FLUSH";
            case T_GET_ID -> "GET_ID";
            case T_GET_LIFETIME -> "GET_LIFETIME";
            case T_DISCARD -> "DISCARD";
            case T_WRITE_ZEROES -> "WRITE_ZEROES";
            case T_SECURE_ERASE -> "SECURE_ERASE";
            default -> "type " + Integer.toUnsignedString(type);
        };
    }
}
