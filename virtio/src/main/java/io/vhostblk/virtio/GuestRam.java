package io.vhostblk.virtio;

import io.vhostblk.linux.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Pretend guest RAM for tests and load generators: regions at chosen guest-physical addresses,
 * a front-end user address for each (gpa + {@link #USER_BIAS}, so code mixing the two spaces
 * fails), and a bump allocator for rings and buffers.
 */
public final class GuestRam implements AutoCloseable {
    /** Distance between a guest-physical address and its pretend front-end user address. */
    public static final long USER_BIAS = 0x7f00_0000_0000L;
    private static final long PAGE = 4096;

    /** A region to create: guest-physical start and size (page multiples keep mmap happy). */
    public record Region(long gpa, long size) {
    }

    private final GuestMemory memory;
    private final Arena arena;
    private final long[] next;
    /** The memfd of each region (owned by {@link #memory}), or null for anonymous regions. */
    private final int[] fds;

    private GuestRam(GuestMemory memory, Arena arena, int[] fds) {
        this.memory = memory;
        this.arena = arena;
        this.fds = fds;
        this.next = new long[memory.regionCount()];
        for (int i = 0; i < next.length; i++) {
            next[i] = memory.regions().get(i).guestPhysAddr();
        }
    }

    /** Regions backed by native memory from a shared arena, wrapped with {@link GuestMemory#wrap}. */
    public static GuestRam anonymous(Region... regions) throws VirtioException {
        Arena arena = Arena.ofShared();
        List<GuestMemory.RegionSpec> specs = new ArrayList<>();
        List<MemorySegment> segs = new ArrayList<>();
        for (Region r : regions) {
            specs.add(new GuestMemory.RegionSpec(r.gpa(), r.size(), r.gpa() + USER_BIAS, 0));
            segs.add(arena.allocate(r.size(), PAGE));
        }
        try {
            return new GuestRam(GuestMemory.wrap(specs, segs), arena, null);
        } catch (VirtioException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Regions each backed by its own memfd, mapped by {@link GuestMemory#map} (the production
     * path). Each region sits at file offset mmapOffset, which need not be page aligned.
     */
    public static GuestRam memfd(long mmapOffset, Region... regions) throws VirtioException {
        List<GuestMemory.RegionSpec> specs = new ArrayList<>();
        int[] fds = new int[regions.length];
        int made = 0;
        try {
            for (Region r : regions) {
                int fd = Libc.memfdCreate("vhost-blk-guest-ram", Libc.MFD_CLOEXEC);
                if (fd < 0) {
                    throw new VirtioException("memfd_create failed: errno " + -fd);
                }
                fds[made++] = fd;
                int rc = Libc.ftruncate(fd, mmapOffset + r.size());
                if (rc < 0) {
                    throw new VirtioException("ftruncate failed: errno " + -rc);
                }
                specs.add(new GuestMemory.RegionSpec(r.gpa(), r.size(), r.gpa() + USER_BIAS, mmapOffset));
            }
        } catch (VirtioException e) {
            for (int i = 0; i < made; i++) {
                Libc.close(fds[i]);
            }
            throw e;
        }
        return new GuestRam(GuestMemory.map(specs, fds), null, fds.clone());
    }

    public GuestMemory memory() {
        return memory;
    }

    /**
     * The memfd backing region i, to share with a back-end (SET_MEM_TABLE); it stays owned by
     * this object and is closed by {@link #close()}. Only for {@link #memfd} RAM.
     */
    public int fd(int region) {
        if (fds == null) {
            throw new IllegalStateException("anonymous guest RAM has no fd to share");
        }
        return fds[region];
    }

    /** The pretend front-end user address of a guest-physical address. */
    public static long userAddr(long gpa) {
        return gpa + USER_BIAS;
    }

    /** Allocates len bytes aligned to align (a power of two) in the first region with room; returns the gpa. */
    public long alloc(long len, long align) {
        for (int i = 0; i < next.length; i++) {
            GuestMemory.RegionSpec r = memory.regions().get(i);
            long start = (next[i] + align - 1) & -align;
            if (start + len <= r.guestPhysAddr() + r.size()) {
                next[i] = start + len;
                return start;
            }
        }
        throw new IllegalStateException("guest RAM exhausted allocating " + len + " bytes");
    }

    /** Allocates in region i only (to place buffers at region edges, say). */
    public long allocIn(int region, long len, long align) {
        GuestMemory.RegionSpec r = memory.regions().get(region);
        long start = (next[region] + align - 1) & -align;
        if (start + len > r.guestPhysAddr() + r.size()) {
            throw new IllegalStateException("region " + region + " exhausted allocating " + len + " bytes");
        }
        next[region] = start + len;
        return start;
    }

    /** A segment over [gpa, gpa+len), which must lie in one region. */
    public MemorySegment at(long gpa, long len) {
        try {
            return memory.guestRange(gpa, len);
        } catch (VirtioException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        memory.close();
        if (arena != null) {
            arena.close();
        }
    }
}
