package io.vhostblk.virtio;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The front-end's dirty-page bitmap for live migration (vhost-user SET_LOG_BASE): bit
 * {@code gpa / 4096} is set for every guest-physical page the back-end writes, so the front-end
 * sends the page again. Bits are set with an atomic OR on 64-bit little-endian words, because the
 * front-end fetches and clears them concurrently. Pages beyond the bitmap (which the front-end
 * sizes for all guest memory) are counted, not written.
 */
public final class DirtyLog {
    /** VHOST_LOG_PAGE: one bit covers this many bytes. */
    public static final int PAGE_SIZE = 4096;
    private static final int PAGE_SHIFT = 12;
    private static final VarHandle WORD = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final MemorySegment bitmap;
    private final long pages;
    private final AtomicLong outOfRange = new AtomicLong();

    /** @param bitmap the mapped log; its size is rounded down to whole 64-bit words */
    public DirtyLog(MemorySegment bitmap) {
        this.bitmap = bitmap;
        this.pages = (bitmap.byteSize() / 8) * 64;
    }

    /** Marks every page that [gpa, gpa + length) touches. */
    public void mark(long gpa, long length) {
        if (length <= 0) {
            return;
        }
        long first = gpa >>> PAGE_SHIFT;
        long last = (gpa + length - 1) >>> PAGE_SHIFT;
        for (long page = first; page <= last; page++) {
            if (page >= pages) {
                outOfRange.incrementAndGet();
                return;
            }
            WORD.getAndBitwiseOr(bitmap, (page >>> 6) * 8, 1L << (page & 63));
        }
    }

    /** Marks a range given by host address (as descriptor chains hold buffers), which lies in one region of {@code memory}. */
    public void markHost(GuestMemory memory, long hostAddress, long length) {
        for (int r = 0; r < memory.regionCount(); r++) {
            MemorySegment region = memory.regionSegment(r);
            long offset = hostAddress - region.address();
            if (offset >= 0 && offset < region.byteSize()) {
                mark(memory.regionGuestAddr(r) + offset, length);
                return;
            }
        }
        outOfRange.incrementAndGet();
    }

    /** Marks every device-writable buffer of a completed chain (data and status byte). */
    public void markWritable(GuestMemory memory, DescriptorChain chain) {
        for (int i = 0; i < chain.segmentCount(); i++) {
            if (chain.writable(i)) {
                markHost(memory, chain.address(i), chain.length(i));
            }
        }
    }

    /** Whether page {@code gpa / 4096} is marked (for tests and diagnostics). */
    public boolean isDirty(long gpa) {
        long page = gpa >>> PAGE_SHIFT;
        return page < pages && ((long) WORD.getVolatile(bitmap, (page >>> 6) * 8) & (1L << (page & 63))) != 0;
    }

    /** Ranges that fell outside the bitmap (a front-end that sized it too small). */
    public long outOfRange() {
        return outOfRange.get();
    }
}
