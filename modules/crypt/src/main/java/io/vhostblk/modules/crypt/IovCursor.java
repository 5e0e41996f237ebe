package io.vhostblk.modules.crypt;

import io.vhostblk.linux.Libc;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A position in a native {@code struct iovec} array, moved forward byte by byte of payload; reused per
 * request (no allocation). Buffer addresses are raw, addressed through {@link #ALL}: the compat-lib checked
 * every guest buffer against the guest's memory table before a hook sees it.
 */
final class IovCursor {

    /** The whole address space, so that iovec buffers need no segment of their own per request. */
    static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final long IOVEC_BYTES = Libc.IOVEC.byteSize();

    private MemorySegment iov;
    private int count;
    private int entry;
    private long offset;

    /** Starts at the first byte of {@code iov}'s {@code count} buffers. */
    void reset(MemorySegment iov, int count) {
        this.iov = iov;
        this.count = count;
        this.entry = 0;
        this.offset = 0;
    }

    /** Total bytes of the buffers (guest-stated lengths; compared with the request length before use). */
    static long totalLength(MemorySegment iov, int count) {
        long total = 0;
        for (int i = 0; i < count; i++) {
            total += length(iov, i);
        }
        return total;
    }

    static long base(MemorySegment iov, int i) {
        return iov.get(ValueLayout.JAVA_LONG, i * IOVEC_BYTES);
    }

    static long length(MemorySegment iov, int i) {
        return iov.get(ValueLayout.JAVA_LONG, i * IOVEC_BYTES + 8);
    }

    /** Writes entry {@code i} of a native iovec array. */
    static void put(MemorySegment iov, int i, long base, long length) {
        iov.set(ValueLayout.JAVA_LONG, i * IOVEC_BYTES, base);
        iov.set(ValueLayout.JAVA_LONG, i * IOVEC_BYTES + 8, length);
    }

    /** Contiguous bytes left in the current buffer (skipping exhausted and empty ones); 0 at the end. */
    long contiguous() {
        while (entry < count) {
            long left = length(iov, entry) - offset;
            if (left > 0) {
                return left;
            }
            entry++;
            offset = 0;
        }
        return 0;
    }

    /** Address of the current byte; call {@link #contiguous()} first. */
    long address() {
        return base(iov, entry) + offset;
    }

    /** Moves {@code n} bytes forward within the current buffer ({@code n <= contiguous()}). */
    void advance(long n) {
        offset += n;
    }

    int entry() {
        return entry;
    }

    long offsetInEntry() {
        return offset;
    }

    /** Copies the next {@code n} bytes, across buffer boundaries, into {@code into}; false if the buffers end first. */
    boolean gather(MemorySegment into, int n) {
        return transfer(into, n, false);
    }

    /** Copies {@code n} bytes from {@code from} over the next bytes of the buffers, moving forward. */
    boolean scatter(MemorySegment from, int n) {
        return transfer(from, n, true);
    }

    /** Goes back to a position saved with {@link #entry()} and {@link #offsetInEntry()}. */
    void seek(int savedEntry, long savedOffset) {
        this.entry = savedEntry;
        this.offset = savedOffset;
    }

    private boolean transfer(MemorySegment buffer, int n, boolean toIov) {
        long done = 0;
        while (done < n) {
            long avail = contiguous();
            if (avail == 0) {
                return false;
            }
            long step = Math.min(avail, n - done);
            if (toIov) {
                MemorySegment.copy(buffer, done, ALL, address(), step);
            } else {
                MemorySegment.copy(ALL, address(), buffer, done, step);
            }
            advance(step);
            done += step;
        }
        return true;
    }
}
