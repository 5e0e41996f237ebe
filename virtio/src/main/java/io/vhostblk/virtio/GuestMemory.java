package io.vhostblk.virtio;

import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The guest's RAM as the front-end shared it: a set of regions, each mmapped from a passed fd,
 * with bounds-checked translation of guest-physical and front-end user addresses. Immutable
 * once built; replaced as a whole when the memory table changes.
 *
 * <p>Every region segment is re-scoped to a shared arena owned by this object, so an access
 * through a segment after {@link #close()} throws {@link IllegalStateException} instead of
 * faulting. Raw host addresses handed to the kernel (iovecs for preadv or io_uring) are not
 * protected that way: queue workers must be stopped before the memory they use is closed.
 *
 * <p>Addresses are treated as unsigned 64-bit values; a region must lie below 2^63 in each of
 * its three address spaces, which every real front-end satisfies, so a guest value with the top
 * bit set is simply outside memory.
 */
public final class GuestMemory implements AutoCloseable {

    /** Regions a table may hold: VHOST_USER_MAX_RAM_SLOTS (the baseline without CONFIGURE_MEM_SLOTS is 8). */
    public static final int MAX_REGIONS = 509;

    /** One region as described by the front-end (vhost-user memory table entry). */
    public record RegionSpec(long guestPhysAddr, long size, long userAddr, long mmapOffset) {
    }

    private final List<RegionSpec> specs;
    private final int count;
    private final long[] guestStart;
    private final long[] userStart;
    private final long[] sizes;
    private final long[] hostStart;
    private final MemorySegment[] segments;
    private final Arena scope;
    /** Whole mmaps this object made and must unmap, or null for wrapped memory. */
    private final MemorySegment[] ownedMappings;
    /** fds this object owns and closes, or null. */
    private final int[] ownedFds;
    /**
     * Index of the region that satisfied the last lookup. Written by several queue threads
     * without synchronisation on purpose: any value is a valid start index, int writes are
     * atomic, and a stale hint only costs a longer scan.
     */
    private int lastHit;
    private boolean closed;

    private GuestMemory(List<RegionSpec> specs, MemorySegment[] regionSegments, Arena scope,
                        MemorySegment[] ownedMappings, int[] ownedFds) {
        this.specs = List.copyOf(specs);
        this.count = specs.size();
        this.guestStart = new long[count];
        this.userStart = new long[count];
        this.sizes = new long[count];
        this.hostStart = new long[count];
        this.segments = new MemorySegment[count];
        this.scope = scope;
        this.ownedMappings = ownedMappings;
        this.ownedFds = ownedFds;
        for (int i = 0; i < count; i++) {
            RegionSpec r = specs.get(i);
            guestStart[i] = r.guestPhysAddr();
            userStart[i] = r.userAddr();
            sizes[i] = r.size();
            // Re-scoping ties every access to this object's lifetime (see class comment).
            segments[i] = regionSegments[i].reinterpret(scope, null);
            hostStart[i] = segments[i].address();
        }
    }

    /**
     * mmaps each region from its fd (MAP_SHARED, read/write); takes ownership of the fds: they
     * are closed by {@link #close()}, or before this method throws.
     *
     * <p>Each fd is mapped from file offset 0 for {@code mmapOffset + size} bytes and the region
     * is the slice at {@code mmapOffset}: mmap needs a page-aligned (for hugetlbfs, huge-page
     * aligned) offset and the front-end's offset need not be one. The unused head costs only
     * address space, as in libvhost-user.
     */
    public static GuestMemory map(List<RegionSpec> regions, int[] fds) throws VirtioException {
        List<MemorySegment> mappings = new ArrayList<>();
        try {
            if (fds == null || fds.length != regions.size()) {
                throw new VirtioException("memory table has " + regions.size() + " regions but "
                        + (fds == null ? 0 : fds.length) + " fds");
            }
            validate(regions);
            List<MemorySegment> slices = new ArrayList<>(regions.size());
            for (int i = 0; i < regions.size(); i++) {
                RegionSpec r = regions.get(i);
                requireBacked(i, r, fds[i]);
                MemorySegment whole;
                try {
                    whole = Libc.mmap(r.mmapOffset() + r.size(), Libc.PROT_READ | Libc.PROT_WRITE,
                            Libc.MAP_SHARED, fds[i], 0);
                } catch (LinuxException e) {
                    throw new VirtioException("cannot map region " + i + " (" + describe(r) + "): " + e.getMessage());
                }
                mappings.add(whole);
                slices.add(whole.asSlice(r.mmapOffset(), r.size()));
            }
            return new GuestMemory(regions, slices.toArray(MemorySegment[]::new), Arena.ofShared(),
                    mappings.toArray(MemorySegment[]::new), fds.clone());
        } catch (VirtioException | RuntimeException e) {
            for (MemorySegment m : mappings) {
                Libc.munmap(m);
            }
            if (fds != null) {
                for (int fd : fds) {
                    Libc.close(fd);
                }
            }
            throw e;
        }
    }

    /** Refuses a region that runs past the end of its file (see {@link Libc#endsBefore}). */
    private static void requireBacked(int i, RegionSpec r, int fd) throws VirtioException {
        if (Libc.endsBefore(fd, r.mmapOffset() + r.size())) {
            throw new VirtioException("region " + i + " (" + describe(r) + ") ends past the end of its file ("
                    + Libc.lseek(fd, 0, Libc.SEEK_END) + " bytes)");
        }
    }

    /**
     * Wraps already-mapped native segments (tests, the bench front-end); nothing is unmapped on
     * close. Each mapping must hold at least its region's size bytes; only the first size bytes
     * are used.
     */
    public static GuestMemory wrap(List<RegionSpec> regions, List<MemorySegment> mappings) throws VirtioException {
        if (mappings.size() != regions.size()) {
            throw new VirtioException("memory table has " + regions.size() + " regions but "
                    + mappings.size() + " mappings");
        }
        validate(regions);
        MemorySegment[] slices = new MemorySegment[regions.size()];
        for (int i = 0; i < slices.length; i++) {
            MemorySegment m = mappings.get(i);
            RegionSpec r = regions.get(i);
            if (!m.isNative()) {
                throw new VirtioException("mapping " + i + " is a heap segment; guest memory needs native addresses");
            }
            if (m.byteSize() < r.size()) {
                throw new VirtioException("mapping " + i + " holds " + m.byteSize() + " bytes, region needs " + r.size());
            }
            slices[i] = m.asSlice(0, r.size());
        }
        return new GuestMemory(regions, slices, Arena.ofShared(), null, null);
    }

    /** Checks a memory table: count, sizes, overflow, and no two regions sharing guest-physical addresses. */
    static void validate(List<RegionSpec> regions) throws VirtioException {
        if (regions.size() > MAX_REGIONS) {
            throw new VirtioException("memory table has " + regions.size() + " regions, at most " + MAX_REGIONS + " allowed");
        }
        for (int i = 0; i < regions.size(); i++) {
            RegionSpec r = regions.get(i);
            String what = "region " + i + " (" + describe(r) + ")";
            if (r.size() <= 0) {
                throw new VirtioException(what + ": size must be positive and below 2^63");
            }
            checkRange(what, "guest address", r.guestPhysAddr(), r.size());
            checkRange(what, "user address", r.userAddr(), r.size());
            checkRange(what, "mmap offset", r.mmapOffset(), r.size());
        }
        RegionSpec[] sorted = regions.toArray(RegionSpec[]::new);
        Arrays.sort(sorted, Comparator.comparingLong(RegionSpec::guestPhysAddr));
        for (int i = 1; i < sorted.length; i++) {
            RegionSpec prev = sorted[i - 1];
            if (sorted[i].guestPhysAddr() < prev.guestPhysAddr() + prev.size()) {
                throw new VirtioException("regions overlap in guest-physical space: " + describe(prev)
                        + " and " + describe(sorted[i]));
            }
        }
    }

    private static void checkRange(String what, String field, long start, long size) throws VirtioException {
        if (start < 0 || start > Long.MAX_VALUE - size) {
            throw new VirtioException(what + ": " + field + " + size overflows (must stay below 2^63)");
        }
    }

    private static String describe(RegionSpec r) {
        return String.format("gpa 0x%x size 0x%x uva 0x%x offset 0x%x",
                r.guestPhysAddr(), r.size(), r.userAddr(), r.mmapOffset());
    }

    /**
     * Host address of guest-physical range [gpa, gpa+len) if it lies wholly inside one region,
     * else -1 (also for overflow or len &lt; 0). A zero-length range is inside a region when
     * gpa is.
     */
    public long translate(long gpa, long len) {
        int r = regionIndex(gpa, len);
        return r < 0 ? -1 : hostStart[r] + (gpa - guestStart[r]);
    }

    /**
     * Index of the region that wholly holds guest-physical range [gpa, gpa+len), or -1.
     * Allocation-free; a linear scan starting at the last hit (tables are small).
     */
    public int regionIndex(long gpa, long len) {
        if (len < 0 || gpa < 0) {
            return -1;
        }
        int n = count;
        int start = lastHit;
        if (start >= n) {
            start = 0;
        }
        for (int k = 0; k < n; k++) {
            int i = start + k;
            if (i >= n) {
                i -= n;
            }
            long off = gpa - guestStart[i]; // both non-negative: cannot overflow
            if (off >= 0 && off < sizes[i] && len <= sizes[i] - off) {
                if (i != start) {
                    lastHit = i;
                }
                return i;
            }
        }
        return -1;
    }

    /** Bytes from gpa to the end of region r (gpa must lie in region r). */
    long bytesToRegionEnd(int r, long gpa) {
        return sizes[r] - (gpa - guestStart[r]);
    }

    /** Number of regions. */
    public int regionCount() {
        return count;
    }

    /** The segment over region r (scoped to this memory: unusable after close). */
    public MemorySegment regionSegment(int r) {
        return segments[r];
    }

    /** Guest-physical address where region r starts. */
    public long regionGuestAddr(int r) {
        return guestStart[r];
    }

    /**
     * A segment over guest-physical range [gpa, gpa+len) (allocates: setup paths and tests, not
     * the request path).
     */
    public MemorySegment guestRange(long gpa, long len) throws VirtioException {
        int r = regionIndex(gpa, len);
        if (r < 0) {
            throw new VirtioException(String.format("guest range 0x%x+0x%x is not inside one memory region", gpa, len));
        }
        return segments[r].asSlice(gpa - guestStart[r], len);
    }

    /** A segment over front-end user-address range [uva, uva+len) (vring addresses), checked. */
    public MemorySegment userRange(long uva, long len) throws VirtioException {
        if (len >= 0 && uva >= 0) {
            for (int i = 0; i < count; i++) {
                long off = uva - userStart[i];
                if (off >= 0 && off < sizes[i] && len <= sizes[i] - off) {
                    return segments[i].asSlice(off, len);
                }
            }
        }
        throw new VirtioException(String.format("user range 0x%x+0x%x is not inside one memory region", uva, len));
    }

    /** Translates a front-end user address to a guest-physical one, or -1 if it is in no region. */
    public long userToGuest(long uva) {
        for (int i = 0; i < count; i++) {
            long off = uva - userStart[i];
            if (uva >= 0 && off >= 0 && off < sizes[i]) {
                return guestStart[i] + off;
            }
        }
        return -1;
    }

    public List<RegionSpec> regions() {
        return specs;
    }

    /** Ends access through every region segment, then unmaps and closes what this object owns. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Closing the shared arena invalidates the region segments for every thread (a JVM
        // handshake), so a straggling access throws instead of touching unmapped memory.
        scope.close();
        if (ownedMappings != null) {
            for (MemorySegment m : ownedMappings) {
                Libc.munmap(m);
            }
        }
        if (ownedFds != null) {
            for (int fd : ownedFds) {
                Libc.close(fd);
            }
        }
    }
}
