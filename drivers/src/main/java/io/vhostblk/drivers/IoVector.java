package io.vhostblk.drivers;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * The data of one block request: a list of byte ranges, each inside the memory segment it came from
 * (a guest memory region, or a module's bounce buffer), read and written only through bounds-checked
 * operations. It knows its direction: <em>device-readable</em> data (the guest's data of a write,
 * discard segments) is never written through it ({@link WriteRefusedException}); <em>device-writable</em>
 * data (read buffers, GET_ID) is.
 *
 * <p>A vector is a reusable holder with a fixed capacity: it is filled once per request (from the walked
 * descriptor chain, or over a bounce buffer with {@link #wrap}) and nothing is allocated per I/O. Segment
 * references and offsets sit in preallocated arrays; no segment is sliced per request. Drivers that hand
 * the data to the kernel get the matching native {@code struct iovec} array through a package-private
 * accessor; modules never see raw addresses.
 *
 * <p>Not thread-safe: owned by one queue's event loop (or handed, whole, to one worker at a time).
 */
public final class IoVector {
    /** An empty device-readable vector, for requests without data (FLUSH, DISCARD, WRITE_ZEROES below the compat-lib). */
    public static final IoVector NONE = new IoVector(0, Arena.global(), true);

    private static final long IOVEC_BYTES = 16;
    private static final long ZERO_CHUNK = 64 * 1024;
    /** Compared with {@link MemorySegment#mismatch} (vectorised by the JIT) and copied for zero fills. */
    private static final MemorySegment ZEROS = Arena.global().allocate(ZERO_CHUNK, 4096).asReadOnly();
    /** Read-only views remembered per vector: a guest has few memory regions. */
    private static final int VIEW_CACHE = 4;

    private final MemorySegment[] region;
    private final long[] offset;
    private final long[] length;
    /** Native {@code struct iovec[capacity]} mirroring the segments, for the kernel (io_uring, preadv). */
    private final MemorySegment iovec;
    private final MemorySegment[] viewOf = new MemorySegment[VIEW_CACHE];
    private final MemorySegment[] readOnlyView = new MemorySegment[VIEW_CACHE];
    private final Cursor cursor = new Cursor();
    private int count;
    private long total;
    private boolean deviceWritable;
    /** Where {@link #segmentAt} found its byte, inside the segment's region. */
    private long found;
    /** {@link #NONE}: shared by every queue, so never refilled. */
    private final boolean shared;

    /** A vector of at most {@code capacity} segments, its native iovec array in an automatic arena. */
    public IoVector(int capacity) {
        this(capacity, Arena.ofAuto());
    }

    /** A vector whose native iovec array is allocated in {@code arena}. */
    public IoVector(int capacity, Arena arena) {
        this(capacity, arena, false);
    }

    private IoVector(int capacity, Arena arena, boolean shared) {
        this.shared = shared;
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity must not be negative, got " + capacity);
        }
        region = new MemorySegment[capacity];
        offset = new long[capacity];
        length = new long[capacity];
        iovec = arena.allocate(Math.max(IOVEC_BYTES, IOVEC_BYTES * capacity), 8);
    }

    /** A one-segment vector over all of {@code buffer} (set-up time: allocates). */
    public static IoVector over(MemorySegment buffer, boolean deviceWritable) {
        return new IoVector(1).wrap(buffer, 0, buffer.byteSize(), deviceWritable);
    }

    // ---- filling ----

    /** Empties the vector for a new request whose data has the given direction. */
    public IoVector clear(boolean deviceWritable) {
        if (shared) {
            throw new IoVectorException("IoVector.NONE is shared by every queue and is never refilled");
        }
        // Old segment references are left in place (overwritten by the next add): no loop per request.
        count = 0;
        total = 0;
        this.deviceWritable = deviceWritable;
        return this;
    }

    /**
     * Appends bytes [{@code at}, {@code at + bytes}) of {@code source} (native memory). A zero-length
     * range adds nothing. Refused with {@link IoVectorException}: a range outside the segment, a
     * negative or overflowing one, a vector already full, a total beyond {@link Long#MAX_VALUE}.
     */
    public IoVector add(MemorySegment source, long at, long bytes) {
        if (bytes == 0) {
            return this;
        }
        if (!source.isNative()) {
            throw new IoVectorException("request data must be native memory, got " + source);
        }
        if (at < 0 || bytes < 0 || at > source.byteSize() - bytes) {
            throw new IoVectorException("range at " + at + " of " + bytes + " bytes is outside its "
                    + source.byteSize() + "-byte memory segment");
        }
        if (count == region.length) {
            throw new IoVectorException("more than " + region.length + " data segments");
        }
        if (total > Long.MAX_VALUE - bytes) {
            throw new IoVectorException("data longer than " + Long.MAX_VALUE + " bytes");
        }
        region[count] = source;
        offset[count] = at;
        length[count] = bytes;
        iovec.set(ValueLayout.JAVA_LONG, count * IOVEC_BYTES, source.address() + at);
        iovec.set(ValueLayout.JAVA_LONG, count * IOVEC_BYTES + 8, bytes);
        count++;
        total += bytes;
        return this;
    }

    /** Refills the vector with one range of a buffer the caller owns (a module's bounce buffer). */
    public IoVector wrap(MemorySegment buffer, long at, long bytes, boolean deviceWritable) {
        return clear(deviceWritable).add(buffer, at, bytes);
    }

    // ---- shape ----

    /** Total bytes. */
    public long length() {
        return total;
    }

    /** Number of segments (contiguous ranges). */
    public int segmentCount() {
        return count;
    }

    public int capacity() {
        return region.length;
    }

    /** Whether the data may be written (read buffers); false for data the guest handed us to read. */
    public boolean deviceWritable() {
        return deviceWritable;
    }

    // ---- access ----

    /** The byte at {@code at}. */
    public byte getByte(long at) {
        Objects.checkIndex(at, total);
        int i = segmentAt(at);
        return region[i].get(ValueLayout.JAVA_BYTE, found);
    }

    /** Writes the byte at {@code at}; refused for device-readable data. */
    public void setByte(long at, byte value) {
        checkWritable();
        Objects.checkIndex(at, total);
        int i = segmentAt(at);
        region[i].set(ValueLayout.JAVA_BYTE, found, value);
    }

    /** Copies bytes [{@code from}, {@code from + bytes}) into {@code dst} at {@code dstOffset}. */
    public void copyTo(long from, MemorySegment dst, long dstOffset, long bytes) {
        each(COPY_OUT, from, bytes, dst, dstOffset);
    }

    /** Copies {@code bytes} bytes of {@code src} at {@code srcOffset} over bytes from {@code to}; refused for device-readable data. */
    public void copyFrom(MemorySegment src, long srcOffset, long to, long bytes) {
        checkWritable();
        each(COPY_IN, to, bytes, src, srcOffset);
    }

    /** Zeroes bytes [{@code from}, {@code from + bytes}); refused for device-readable data. */
    public void fillZero(long from, long bytes) {
        checkWritable();
        each(FILL_ZERO, from, bytes, null, 0);
    }

    /** Whether bytes [{@code from}, {@code from + bytes}) are all zero; stops at the first other byte. */
    public boolean isAllZero(long from, long bytes) {
        return each(CHECK_ZERO, from, bytes, null, 0);
    }

    private static final int COPY_OUT = 0;
    private static final int COPY_IN = 1;
    private static final int FILL_ZERO = 2;
    private static final int CHECK_ZERO = 3;

    /**
     * Applies {@code op} to bytes [{@code from}, {@code from + bytes}) one contiguous piece at a time
     * (an operation code rather than a lambda: nothing to allocate). False when CHECK_ZERO met another byte.
     */
    private boolean each(int op, long from, long bytes, MemorySegment other, long otherOffset) {
        Objects.checkFromIndexSize(from, bytes, total);
        long skip = from;
        long done = 0;
        for (int i = 0; i < count && done < bytes; i++) {
            if (skip >= length[i]) {
                skip -= length[i];
                continue;
            }
            long n = Math.min(length[i] - skip, bytes - done);
            MemorySegment piece = region[i];
            long at = offset[i] + skip;
            switch (op) {
                case COPY_OUT -> MemorySegment.copy(piece, at, other, otherOffset + done, n);
                case COPY_IN -> MemorySegment.copy(other, otherOffset + done, piece, at, n);
                case FILL_ZERO -> zero(piece, at, n);
                default -> {
                    if (!allZero(piece, at, n)) {
                        return false;
                    }
                }
            }
            done += n;
            skip = 0;
        }
        return true;
    }

    /** Index of the segment holding byte {@code at} (checked by the caller); its offset in that region goes to {@link #found}. */
    private int segmentAt(long at) {
        int i = 0;
        long skip = at;
        while (skip >= length[i]) {
            skip -= length[i];
            i++;
        }
        found = offset[i] + skip;
        return i;
    }

    /** This vector's cursor, moved to byte 0 (one cursor per vector: reused, never allocated per I/O). */
    public Cursor cursor() {
        if (shared) {
            return cursor; // always at 0 of no data; never written, so queues may share it
        }
        return cursor.seek(0);
    }

    /** Zeroes bytes of {@code target} from a shared zero run (for drivers and modules holding plain segments). */
    public static void zero(MemorySegment target, long at, long bytes) {
        long done = 0;
        while (done < bytes) {
            long n = Math.min(ZERO_CHUNK, bytes - done);
            MemorySegment.copy(ZEROS, 0, target, at + done, n);
            done += n;
        }
    }

    private static boolean allZero(MemorySegment source, long at, long bytes) {
        long done = 0;
        while (done < bytes) {
            long n = Math.min(ZERO_CHUNK, bytes - done);
            if (MemorySegment.mismatch(source, at + done, at + done + n, ZEROS, 0, n) != -1) {
                return false;
            }
            done += n;
        }
        return true;
    }

    private void checkWritable() {
        if (!deviceWritable) {
            throw new WriteRefusedException("request data is device-readable (the guest's data to be stored): "
                    + "it is never written; transform it into a buffer of your own");
        }
    }

    /** A read-only view of segment i's memory, remembered per region so that none is made per I/O. */
    private MemorySegment readOnly(int i) {
        MemorySegment r = region[i];
        for (int k = 0; k < VIEW_CACHE; k++) {
            if (viewOf[k] == r) {
                return readOnlyView[k];
            }
            if (viewOf[k] == null) {
                viewOf[k] = r;
                readOnlyView[k] = r.asReadOnly();
                return readOnlyView[k];
            }
        }
        // More regions than remembered (a guest with many memory slots): shift the oldest out.
        System.arraycopy(viewOf, 1, viewOf, 0, VIEW_CACHE - 1);
        System.arraycopy(readOnlyView, 1, readOnlyView, 0, VIEW_CACHE - 1);
        viewOf[VIEW_CACHE - 1] = r;
        readOnlyView[VIEW_CACHE - 1] = r.asReadOnly();
        return readOnlyView[VIEW_CACHE - 1];
    }

    // ---- below the SPI ----

    /** The native {@code struct iovec} array for the kernel; the first {@link #segmentCount()} entries are valid. Drivers only. */
    MemorySegment nativeIovec() {
        return iovec;
    }

    @Override
    public String toString() {
        return "IoVector[" + total + " B in " + count + " segments, " + (deviceWritable ? "device-writable" : "device-readable") + "]";
    }

    /**
     * A position in the vector's data, for walking it in contiguous pieces (a cipher working through whole
     * sectors, a hash over blocks). {@link #segment()} is the memory of the current piece: a read-only view
     * when the data is device-readable, so that even a raw segment cannot write into the guest's data.
     */
    public final class Cursor {
        private int index;
        private long inSegment;
        private long position;

        private Cursor() {
        }

        /** Moves to byte {@code at} (0 ≤ at ≤ length). */
        public Cursor seek(long at) {
            Objects.checkIndex(at, total + 1);
            index = 0;
            inSegment = at;
            position = at;
            while (index < count && inSegment >= length[index]) {
                inSegment -= length[index];
                index++;
            }
            return this;
        }

        /** Bytes from here to the end of the data. */
        public long remaining() {
            return total - position;
        }

        public long position() {
            return position;
        }

        /** Bytes from here to the end of the current contiguous piece; 0 at the end of the data. */
        public long contiguous() {
            return index < count ? length[index] - inSegment : 0;
        }

        /** The memory holding the current piece (read-only for device-readable data); valid while {@link #contiguous()} > 0. */
        public MemorySegment segment() {
            checkPiece();
            return deviceWritable ? region[index] : readOnly(index);
        }

        /** Offset of the current byte inside {@link #segment()}. */
        public long segmentOffset() {
            checkPiece();
            return offset[index] + inSegment;
        }

        /** Moves {@code bytes} forward, across pieces. */
        public void advance(long bytes) {
            Objects.checkFromIndexSize(0, bytes, remaining());
            position += bytes;
            inSegment += bytes;
            while (index < count && inSegment >= length[index]) {
                inSegment -= length[index];
                index++;
            }
        }

        /** Copies the next {@code bytes} bytes into {@code dst} at {@code dstOffset} and moves past them. */
        public void read(MemorySegment dst, long dstOffset, long bytes) {
            copyTo(position, dst, dstOffset, bytes);
            advance(bytes);
        }

        /** Copies {@code bytes} bytes of {@code src} over the next bytes and moves past them; refused for device-readable data. */
        public void write(MemorySegment src, long srcOffset, long bytes) {
            copyFrom(src, srcOffset, position, bytes);
            advance(bytes);
        }

        private void checkPiece() {
            if (index >= count) {
                throw new IndexOutOfBoundsException("cursor at the end of the data (" + total + " bytes)");
            }
        }
    }
}
