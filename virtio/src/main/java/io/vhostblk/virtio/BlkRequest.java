package io.vhostblk.virtio;

import io.vhostblk.linux.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * One decoded virtio-blk request: header fields, the data as a native {@code struct iovec} array
 * over guest memory, and the status byte. A reusable holder (one per request slot): the decoder
 * refills it, nothing is allocated per request.
 *
 * <p>Data direction: for IN, GET_ID and GET_LIFETIME the data is the device-writable bytes
 * before the status byte; for OUT, DISCARD, WRITE_ZEROES and SECURE_ERASE it is the
 * device-readable bytes after the 16-byte header; FLUSH has none. Readable data is never written:
 * {@link #copyToData} refuses it (a transforming module works in a bounce buffer).
 */
public final class BlkRequest {

    /** What decoding concluded; tells the caller what to do with the request. */
    public enum Outcome {
        /** Well-formed: serve it, then {@link #writeStatus} and push {@link #usedLength}. */
        OK,
        /** Malformed (header, data direction or length): write {@link VirtioBlk#S_IOERR}, push 1. */
        IOERR,
        /** Unknown type, or a type whose feature was not negotiated: write {@link VirtioBlk#S_UNSUPP}, push 1. */
        UNSUPP,
        /** No device-writable byte to hold a status: the request cannot be answered; push used length 0 and log. */
        NO_STATUS
    }

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long IOV_SIZE = Libc.IOVEC.byteSize();

    private final MemorySegment iov;
    private final MemorySegment[] iovRegion;
    private final long[] iovRegionOffset;
    /** Header gather, segment reads and the GET_ID serial; 32 bytes. */
    private final MemorySegment scratch;

    private DescriptorChain chain;
    private Outcome outcome = Outcome.NO_STATUS;
    private String problem = "not decoded";
    private int type = -1;
    private int ioprio;
    private long sector;
    private MemorySegment statusRegion;
    private long statusOffset;
    private long statusAddress;
    private int iovCount;
    private long dataLength;
    private boolean dataWritable;

    /** A holder for requests of at most maxSegments chain segments, its iovec array in an automatic arena. */
    public BlkRequest(int maxSegments) {
        this(maxSegments, Arena.ofAuto());
    }

    /** A holder whose native iovec array is allocated in the given arena. */
    public BlkRequest(int maxSegments, Arena arena) {
        if (maxSegments < 1) {
            throw new IllegalArgumentException("maxSegments must be positive, got " + maxSegments);
        }
        this.iov = arena.allocate(IOV_SIZE * maxSegments, 8);
        this.iovRegion = new MemorySegment[maxSegments];
        this.iovRegionOffset = new long[maxSegments];
        this.scratch = arena.allocate(32, 8);
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
        statusAddress = 0;
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
        statusAddress = region.address() + offset;
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

    /** Points the iovec array at chain bytes [from, from+len) of the readable or writable side. */
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
            if (n == iovRegion.length) {
                return false;
            }
            iov.set(ValueLayout.JAVA_LONG, n * IOV_SIZE, c.address(i) + skip);
            iov.set(ValueLayout.JAVA_LONG, n * IOV_SIZE + 8, take);
            iovRegion[n] = c.regionSegment(i);
            iovRegionOffset[n] = c.regionOffset(i) + skip;
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

    /** Host address of the status byte, or 0 without one. */
    public long statusAddress() {
        return statusAddress;
    }

    /** Writes the status byte into guest memory (bounds-checked through its region segment). */
    public void writeStatus(byte status) {
        if (statusRegion == null) {
            throw new IllegalStateException("request has no status byte (outcome " + outcome + ")");
        }
        statusRegion.set(ValueLayout.JAVA_BYTE, statusOffset, status);
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

    /** The {@code struct iovec} array ({@link Libc#IOVEC} layout); the first {@link #iovCount()} entries are valid. */
    public MemorySegment iov() {
        return iov;
    }

    public int iovCount() {
        return iovCount;
    }

    /** Host address of data iovec i. */
    public long iovAddress(int i) {
        return iov.get(ValueLayout.JAVA_LONG, Objects.checkIndex(i, iovCount) * IOV_SIZE);
    }

    /** Length of data iovec i. */
    public long iovLength(int i) {
        return iov.get(ValueLayout.JAVA_LONG, Objects.checkIndex(i, iovCount) * IOV_SIZE + 8);
    }

    /** Region segment holding data iovec i (bounds-checked guest access). */
    public MemorySegment iovRegion(int i) {
        return iovRegion[Objects.checkIndex(i, iovCount)];
    }

    /** Offset of data iovec i inside {@link #iovRegion(int)}. */
    public long iovRegionOffset(int i) {
        return iovRegionOffset[Objects.checkIndex(i, iovCount)];
    }

    /** Total data bytes described by the iovecs. */
    public long dataLength() {
        return dataLength;
    }

    /** Whether the data is device-writable (IN, GET_ID, GET_LIFETIME). */
    public boolean dataWritable() {
        return dataWritable;
    }

    /** Copies data bytes [from, from+len) to dst; returns the bytes copied. */
    public long copyFromData(long from, MemorySegment dst, long dstOffset, long len) {
        return copyData(from, dst, dstOffset, len, false);
    }

    /** Copies src bytes into data bytes [to, to+len); only for device-writable data. Returns the bytes copied. */
    public long copyToData(long to, MemorySegment src, long srcOffset, long len) {
        if (!dataWritable) {
            throw new IllegalStateException("data of a " + VirtioBlk.typeName(type) + " request is device-readable");
        }
        return copyData(to, src, srcOffset, len, true);
    }

    private long copyData(long skip, MemorySegment other, long otherOffset, long len, boolean intoGuest) {
        if (skip < 0 || len < 0) {
            throw new IllegalArgumentException("negative offset or length");
        }
        long done = 0;
        for (int i = 0; i < iovCount && done < len; i++) {
            long segLen = iov.get(ValueLayout.JAVA_LONG, i * IOV_SIZE + 8);
            if (skip >= segLen) {
                skip -= segLen;
                continue;
            }
            long n = Math.min(segLen - skip, len - done);
            if (intoGuest) {
                MemorySegment.copy(other, otherOffset + done, iovRegion[i], iovRegionOffset[i] + skip, n);
            } else {
                MemorySegment.copy(iovRegion[i], iovRegionOffset[i] + skip, other, otherOffset + done, n);
            }
            done += n;
            skip = 0;
        }
        return done;
    }

    /**
     * Writes the GET_ID serial: up to {@link VirtioBlk#ID_BYTES} bytes, NUL-padded, truncated to
     * the guest's buffer. Returns the bytes written.
     */
    public int writeId(byte[] serial) {
        if (type != VirtioBlk.T_GET_ID) {
            throw new IllegalStateException("writeId on a " + VirtioBlk.typeName(type) + " request");
        }
        for (int k = 0; k < VirtioBlk.ID_BYTES; k++) {
            scratch.set(ValueLayout.JAVA_BYTE, k, k < serial.length ? serial[k] : 0);
        }
        return (int) copyData(0, scratch, 0, Math.min(VirtioBlk.ID_BYTES, dataLength), true);
    }

    /** Number of 16-byte segments in a DISCARD / WRITE_ZEROES / SECURE_ERASE request. */
    public int segmentCount() {
        return isSegmentType(type) && outcome == Outcome.OK ? (int) (dataLength / VirtioBlk.RANGE_SEGMENT_BYTES) : 0;
    }

    /** Reads segment i of a DISCARD / WRITE_ZEROES / SECURE_ERASE request into out (read once: the guest may change it). */
    public DiscardSegment readSegment(int i, DiscardSegment out) {
        Objects.checkIndex(i, segmentCount());
        copyData((long) i * VirtioBlk.RANGE_SEGMENT_BYTES, scratch, 0, VirtioBlk.RANGE_SEGMENT_BYTES, false);
        out.set(scratch.get(U64, 0), scratch.get(U32, 8), scratch.get(U32, 12));
        return out;
    }

    static boolean isSegmentType(int t) {
        return t == VirtioBlk.T_DISCARD || t == VirtioBlk.T_WRITE_ZEROES || t == VirtioBlk.T_SECURE_ERASE;
    }

    @Override
    public String toString() {
        return "BlkRequest[head=" + head() + ", " + VirtioBlk.typeName(type) + ", sector=" + Long.toUnsignedString(sector)
                + ", data=" + dataLength + " B in " + iovCount + " iovecs, " + outcome
                + (problem != null ? " (" + problem + ")" : "") + "]";
    }
}
