package io.vhostblk.virtio;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One decoded virtio-blk request: header fields, where its data lies (a list of ranges of guest
 * memory regions, each checked by the walker) and the status byte. A reusable holder (one per
 * request slot): the decoder refills it, nothing is allocated per request. The data itself is read
 * and written only through the drivers' {@code IoVector}, which the compat-lib builds from
 * {@link #dataRegion}, {@link #dataRegionOffset} and {@link #dataSegmentLength}.
 *
 * <p>Data direction: for IN, GET_ID and GET_LIFETIME the data is the device-writable bytes
 * before the status byte; for OUT, DISCARD, WRITE_ZEROES and SECURE_ERASE it is the
 * device-readable bytes after the 16-byte header; FLUSH has none.
 */
public final class BlkRequest {

    /** What decoding concluded; tells the caller what to do with the request. */
    public enum Outcome {
        /** Well-formed: serve it, then write the status byte ({@link #statusRegion}) and push {@link #usedLength}. */
        OK,
        /** Malformed (header, data direction or length): write {@link VirtioBlk#S_IOERR}, push 1. */
        IOERR,
        /** Unknown type, or a type whose feature was not negotiated: write {@link VirtioBlk#S_UNSUPP}, push 1. */
        UNSUPP,
        /** No device-writable byte to hold a status: the request cannot be answered; push used length 0 and log. */
        NO_STATUS
    }

    private final MemorySegment[] dataRegion;
    private final long[] dataRegionOffset;
    private final long[] dataSegmentLength;
    /** Header gather; 16 bytes. */
    private final MemorySegment scratch;

    private DescriptorChain chain;
    private Outcome outcome = Outcome.NO_STATUS;
    private String problem = "not decoded";
    private int type = -1;
    private int ioprio;
    private long sector;
    private MemorySegment statusRegion;
    private long statusOffset;
    private int iovCount;
    private long dataLength;
    private boolean dataWritable;

    /** A holder for requests of at most maxSegments chain segments. */
    public BlkRequest(int maxSegments) {
        if (maxSegments < 1) {
            throw new IllegalArgumentException("maxSegments must be positive, got " + maxSegments);
        }
        this.dataRegion = new MemorySegment[maxSegments];
        this.dataRegionOffset = new long[maxSegments];
        this.dataSegmentLength = new long[maxSegments];
        this.scratch = Arena.ofAuto().allocate(VirtioBlk.HEADER_BYTES, 8);
    }

    // ---- decoder side (package-private) ----

    void reset(DescriptorChain c) {
        chain = c;
        outcome = Outcome.NO_STATUS;
        problem = null;
        type = -1;
        ioprio = 0;
        sector = 0;
        statusRegion = null;
        statusOffset = 0;
        iovCount = 0;
        dataLength = 0;
        dataWritable = false;
    }

    void header(int t, int prio, long sec) {
        type = t;
        ioprio = prio;
        sector = sec;
    }

    void status(MemorySegment region, long offset) {
        statusRegion = region;
        statusOffset = offset;
    }

    Outcome fail(Outcome o, String why) {
        outcome = o;
        problem = why;
        iovCount = 0;
        dataLength = 0;
        return o;
    }

    Outcome ok() {
        outcome = Outcome.OK;
        problem = null;
        return Outcome.OK;
    }

    MemorySegment scratch() {
        return scratch;
    }

    /** Points the data at chain bytes [from, from+len) of the readable or writable side. */
    boolean setData(boolean writableSide, long from, long len) {
        DescriptorChain c = chain;
        int first = writableSide ? c.readableCount() : 0;
        int end = writableSide ? c.segmentCount() : c.readableCount();
        int n = 0;
        long skip = from;
        long left = len;
        for (int i = first; i < end && left > 0; i++) {
            long segLen = c.length(i);
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            long take = Math.min(segLen - skip, left);
            if (n == dataRegion.length) {
                return false;
            }
            dataRegion[n] = c.regionSegment(i);
            dataRegionOffset[n] = c.regionOffset(i) + skip;
            dataSegmentLength[n] = take;
            n++;
            left -= take;
            skip = 0;
        }
        iovCount = n;
        dataLength = len - left;
        dataWritable = writableSide;
        return left == 0;
    }

    // ---- caller side ----

    public Outcome outcome() {
        return outcome;
    }

    /** Why decoding failed (a constant phrase, for logs), or null when {@link #outcome()} is OK. */
    public String error() {
        return problem;
    }

    /** The chain this request was decoded from (its head is the used-ring id). */
    public DescriptorChain chain() {
        return chain;
    }

    public int head() {
        return chain == null ? -1 : chain.head();
    }

    /** Request type ({@code VirtioBlk.T_*}), or -1 when the header was too short to read. */
    public int type() {
        return type;
    }

    /** The header's second word (reserved, or ioprio for legacy drivers). */
    public int ioprio() {
        return ioprio;
    }

    /** First 512-byte sector (u64 from the guest: may be negative as a Java long; check with withinCapacity). */
    public long sector() {
        return sector;
    }

    /** Whether a status byte was found (false only for {@link Outcome#NO_STATUS}). */
    public boolean hasStatus() {
        return statusRegion != null;
    }

    /** The guest memory region holding the status byte, or null without one (the compat-lib writes it through an IoVector). */
    public MemorySegment statusRegion() {
        return statusRegion;
    }

    /** Offset of the status byte inside {@link #statusRegion()}. */
    public long statusOffset() {
        return statusOffset;
    }

    /**
     * The used-ring length for a completed request: data bytes the device wrote plus the status
     * byte. IN counts its whole data on OK; GET_ID counts min(ID_BYTES, data); anything failed
     * or without device-written data counts 1; a request without status counts 0. The value is
     * the used element's u32 (a read of 2 GiB or more comes back negative as a Java int).
     */
    public int usedLength(byte status) {
        if (statusRegion == null) {
            return 0;
        }
        if (status != VirtioBlk.S_OK || !dataWritable) {
            return 1;
        }
        long written = switch (type) {
            case VirtioBlk.T_GET_ID -> Math.min(VirtioBlk.ID_BYTES, dataLength);
            case VirtioBlk.T_GET_LIFETIME -> Math.min(VirtioBlk.LIFETIME_BYTES, dataLength);
            default -> dataLength;
        };
        return (int) (written + 1); // the walker keeps a chain's total below 2^32, so this fits a u32
    }

    /** Number of data segments (contiguous ranges of guest memory). */
    public int dataSegmentCount() {
        return iovCount;
    }

    /** The guest memory region holding data segment i. */
    public MemorySegment dataRegion(int i) {
        return dataRegion[Objects.checkIndex(i, iovCount)];
    }

    /** Offset of data segment i inside {@link #dataRegion(int)}. */
    public long dataRegionOffset(int i) {
        return dataRegionOffset[Objects.checkIndex(i, iovCount)];
    }

    /** Length of data segment i. */
    public long dataSegmentLength(int i) {
        return dataSegmentLength[Objects.checkIndex(i, iovCount)];
    }

    /** Total data bytes. */
    public long dataLength() {
        return dataLength;
    }

    /** Whether the data is device-writable (IN, GET_ID, GET_LIFETIME). */
    public boolean dataWritable() {
        return dataWritable;
    }

    static boolean isSegmentType(int t) {
        return t == VirtioBlk.T_DISCARD || t == VirtioBlk.T_WRITE_ZEROES || t == VirtioBlk.T_SECURE_ERASE;
    }

    @Override
    public String toString() {
        return "BlkRequest[head=" + head() + ", " + VirtioBlk.typeName(type) + ", sector=" + Long.toUnsignedString(sector)
                + ", data=" + dataLength + " B in " + iovCount + " segments, " + outcome
                + (problem != null ? " (" + problem + ")" : "") + "]";
    }
}
