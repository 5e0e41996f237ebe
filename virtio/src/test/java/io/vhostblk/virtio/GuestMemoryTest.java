package io.vhostblk.virtio;

import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.GuestMemory.RegionSpec;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GuestMemoryTest {
    private static final long MB = 1 << 20;

    private static GuestMemory twoRegions(Arena arena) throws VirtioException {
        // Region 0: gpa [0x10000, +1 MiB); region 1: gpa [0x100000000, +1 MiB).
        return GuestMemory.wrap(
                List.of(new RegionSpec(0x10000, MB, 0x7000_0000_0000L, 0),
                        new RegionSpec(0x1_0000_0000L, MB, 0x7100_0000_0000L, 0)),
                List.of(arena.allocate(MB, 4096), arena.allocate(MB, 4096)));
    }

    @Test
    void translatesInsideRegionsAndRejectsEverythingElse() throws Exception {
        try (Arena arena = Arena.ofConfined(); GuestMemory m = twoRegions(arena)) {
            long base0 = m.regionSegment(0).address();
            long base1 = m.regionSegment(1).address();
            assertEquals(base0, m.translate(0x10000, 16));
            assertEquals(base0 + 100, m.translate(0x10000 + 100, MB - 100));
            assertEquals(base1 + 8, m.translate(0x1_0000_0008L, 8));
            assertEquals(base0 + MB - 1, m.translate(0x10000 + MB - 1, 1));
            assertEquals(base0 + 5, m.translate(0x10005, 0), "zero length inside a region");
            assertEquals(-1, m.translate(0x10000 + MB, 0), "zero length just past the end");
            assertEquals(-1, m.translate(0x10000 + MB - 1, 2), "runs past the end");
            assertEquals(-1, m.translate(0xffff, 1), "just before the start");
            assertEquals(-1, m.translate(0x10000, -1), "negative length");
            assertEquals(-1, m.translate(0x10000, Long.MAX_VALUE), "huge length");
            assertEquals(-1, m.translate(-1L, 1), "u64 max address");
            assertEquals(-1, m.translate(Long.MIN_VALUE + 0x10000, 16), "top bit set");
            assertEquals(-1, m.translate(0x10010, Long.MAX_VALUE - 8), "gpa + len overflows");
            assertEquals(-1, m.translate(0x200000, 1), "hole between regions");
            assertEquals(0, m.regionIndex(0x10000, 1));
            assertEquals(1, m.regionIndex(0x1_0000_0000L, 1));
            assertEquals(0, m.regionIndex(0x10000, 1), "last-hit cache does not stick to the wrong region");
        }
    }

    @Test
    void rangeSpanningTwoAdjacentRegionsIsNotOneTranslation() throws Exception {
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(0, MB), new GuestRam.Region(MB, MB))) {
            assertEquals(-1, ram.memory().translate(MB - 8, 16));
            assertTrue(ram.memory().translate(MB - 8, 8) > 0);
            assertTrue(ram.memory().translate(MB, 8) > 0);
        }
    }

    @Test
    void userRangeUsesFrontEndAddresses() throws Exception {
        try (Arena arena = Arena.ofConfined(); GuestMemory m = twoRegions(arena)) {
            MemorySegment s = m.userRange(0x7100_0000_0010L, 32);
            assertEquals(m.regionSegment(1).address() + 0x10, s.address());
            assertEquals(32, s.byteSize());
            assertThrows(VirtioException.class, () -> m.userRange(0x7100_0000_0000L + MB - 4, 8));
            assertThrows(VirtioException.class, () -> m.userRange(0x10000, 8), "a gpa is not a user address");
            assertThrows(VirtioException.class, () -> m.userRange(0x7000_0000_0000L, -1));
            assertEquals(0x1_0000_0010L, m.userToGuest(0x7100_0000_0010L));
            assertEquals(-1, m.userToGuest(0x10));
        }
    }

    @Test
    void rejectsBadMemoryTables() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(MB, 4096);
            MemorySegment b = arena.allocate(MB, 4096);
            assertRejected("size must be positive", List.of(new RegionSpec(0, 0, 0, 0)), List.of(a));
            assertRejected("size must be positive", List.of(new RegionSpec(0, -4096, 0, 0)), List.of(a));
            assertRejected("guest address + size overflows",
                    List.of(new RegionSpec(Long.MAX_VALUE - 100, 4096, 0, 0)), List.of(a));
            assertRejected("guest address + size overflows", List.of(new RegionSpec(-4096, 4096, 0, 0)), List.of(a));
            assertRejected("user address + size overflows",
                    List.of(new RegionSpec(0, 4096, Long.MAX_VALUE - 10, 0)), List.of(a));
            assertRejected("mmap offset + size overflows",
                    List.of(new RegionSpec(0, 4096, 0, Long.MAX_VALUE)), List.of(a));
            assertRejected("overlap", List.of(new RegionSpec(0x100000, MB, 0, 0),
                    new RegionSpec(0x100000 + MB - 1, MB, MB, 0)), List.of(a, b));
            assertRejected("overlap", List.of(new RegionSpec(0x200000, MB, 0, 0),
                    new RegionSpec(0x200000 - MB + 1, MB, MB, 0)), List.of(a, b));
            assertRejected("2 regions but 1 mappings", List.of(new RegionSpec(0, MB, 0, 0),
                    new RegionSpec(MB, MB, MB, 0)), List.of(a));
            assertRejected("holds", List.of(new RegionSpec(0, 2 * MB, 0, 0)), List.of(a));
            assertRejected("heap segment", List.of(new RegionSpec(0, 16, 0, 0)),
                    List.of(MemorySegment.ofArray(new byte[16])));
            List<RegionSpec> many = new ArrayList<>();
            List<MemorySegment> maps = new ArrayList<>();
            for (int i = 0; i <= GuestMemory.MAX_REGIONS; i++) {
                many.add(new RegionSpec(i * 4096L, 4096, i * 4096L, 0));
                maps.add(a);
            }
            assertRejected("at most 509", many, maps);
        }
    }

    private static void assertRejected(String fragment, List<RegionSpec> specs, List<MemorySegment> maps) {
        VirtioException e = assertThrows(VirtioException.class, () -> GuestMemory.wrap(specs, maps).close());
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void adjacentRegionsAreNotOverlapping() throws Exception {
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(MB, MB), new GuestRam.Region(0, MB))) {
            assertEquals(2, ram.memory().regionCount());
        }
    }

    @Test
    void mapsMemfdRegionsAtUnalignedOffsets() throws Exception {
        int fd = Libc.memfdCreate("gm-test", Libc.MFD_CLOEXEC);
        assertTrue(fd >= 0);
        long offset = 4096 * 3 + 512; // not page aligned: map must still work
        assertEquals(0, Libc.ftruncate(fd, offset + MB));
        // Put a marker in the file where the region starts, through an independent mapping.
        MemorySegment probe = Libc.mmap(offset + MB, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        try {
            probe.set(ValueLayout.JAVA_LONG_UNALIGNED, offset, 0x1122334455667788L);
            try (GuestMemory m = GuestMemory.map(List.of(new RegionSpec(0x40000, MB, 0x5000_0000, offset)), new int[]{fd})) {
                long host = m.translate(0x40000, 8);
                assertTrue(host > 0);
                assertEquals(0x1122334455667788L, m.regionSegment(0).get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
                // And shared the other way: a store through guest memory reaches the file.
                m.regionSegment(0).set(ValueLayout.JAVA_BYTE, MB - 1, (byte) 0x5a);
                assertEquals((byte) 0x5a, probe.get(ValueLayout.JAVA_BYTE, offset + MB - 1));
            }
            // close() closed the fd it owned.
            assertTrue(Libc.close(fd) < 0, "fd should already be closed");
        } finally {
            Libc.munmap(probe);
        }
    }

    @Test
    void mapFailureClosesFdsAndThrows() {
        int fd = Libc.memfdCreate("gm-test", Libc.MFD_CLOEXEC);
        assertTrue(fd >= 0);
        assertEquals(0, Libc.ftruncate(fd, MB));
        // A bad fd forces mmap itself to fail on the second region.
        VirtioException e = assertThrows(VirtioException.class, () -> GuestMemory.map(
                List.of(new RegionSpec(0, MB, 0, 0), new RegionSpec(MB, MB, MB, 0)), new int[]{fd, 1 << 20}));
        assertTrue(e.getMessage().contains("cannot map region 1"), e.getMessage());
        assertTrue(Libc.close(fd) < 0, "fd of the failed table was closed");
    }

    @Test
    void aRegionLargerThanItsFileIsRefusedBeforeAnythingTouchesIt() {
        int fd = Libc.memfdCreate("gm-test", Libc.MFD_CLOEXEC);
        assertTrue(fd >= 0);
        assertEquals(0, Libc.ftruncate(fd, MB));
        // mmap would accept 2 MiB of a 1 MiB memfd; reading the second MiB would raise SIGBUS.
        VirtioException e = assertThrows(VirtioException.class, () -> GuestMemory.map(
                List.of(new RegionSpec(0, 2 * MB, 0, 0)), new int[]{fd}));
        assertTrue(e.getMessage().contains("ends past the end of its file (" + MB + " bytes)"), e.getMessage());
        assertTrue(Libc.close(fd) < 0, "fd of the refused table was closed");
        int fd2 = Libc.memfdCreate("gm-test", Libc.MFD_CLOEXEC);
        assertEquals(0, Libc.ftruncate(fd2, MB));
        VirtioException offset = assertThrows(VirtioException.class, () -> GuestMemory.map(
                List.of(new RegionSpec(0, MB, 0, 4096)), new int[]{fd2}));
        assertTrue(offset.getMessage().contains("ends past the end"), offset.getMessage());
    }

    @Test
    void mapRejectsFdCountMismatch() {
        int fd = Libc.memfdCreate("gm-test", Libc.MFD_CLOEXEC);
        assertThrows(VirtioException.class, () -> GuestMemory.map(
                List.of(new RegionSpec(0, MB, 0, 0), new RegionSpec(MB, MB, MB, 0)), new int[]{fd}));
        assertTrue(Libc.close(fd) < 0, "ownership was taken even on failure");
    }

    @Test
    void accessAfterCloseThrowsInsteadOfFaulting() throws Exception {
        GuestRam ram = GuestRam.memfd(0, new GuestRam.Region(0, MB));
        MemorySegment s = ram.memory().regionSegment(0);
        s.set(ValueLayout.JAVA_INT, 0, 7);
        ram.close();
        assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_INT, 0));
        ram.memory().close(); // idempotent
    }

    private static int memfd(long size) {
        int fd = Libc.memfdCreate("gm-test", Libc.MFD_CLOEXEC);
        assertTrue(fd >= 0);
        assertEquals(0, Libc.ftruncate(fd, size));
        return fd;
    }

    @Test
    void addedRegionTranslatesAndTheOldTableHandsItsMappingsOver() throws Exception {
        int fd0 = memfd(MB);
        int fd1 = memfd(MB);
        GuestMemory first = GuestMemory.map(List.of(new RegionSpec(0, MB, 0x5000_0000L, 0)), new int[]{fd0});
        first.regionSegment(0).set(ValueLayout.JAVA_LONG, 64, 0x0123456789abcdefL);
        GuestMemory second = first.withRegion(new RegionSpec(4 * MB, MB, 0x6000_0000L, 0), fd1);
        assertEquals(-1, first.translate(4 * MB, 8), "the old table is unchanged");
        assertTrue(second.translate(4 * MB, 8) > 0);
        assertEquals(1, second.regionIndex(4 * MB + 8, 8));
        first.close();
        // The first region's mapping survived the old table's close: it belongs to the new one now.
        assertEquals(0x0123456789abcdefL, second.regionSegment(0).get(ValueLayout.JAVA_LONG, 64));
        assertTrue(Libc.fcntl(fd0, Libc.F_GETFL, 0) >= 0, "fd of a handed-over region stays open");

        GuestMemory third = second.withoutRegion(0);
        MemorySegment removed = second.regionSegment(0);
        assertEquals(1, third.regionCount());
        assertEquals(-1, third.translate(64, 8), "removed region no longer translates");
        assertTrue(third.translate(4 * MB, 8) > 0);
        second.close();
        assertThrows(IllegalStateException.class, () -> removed.get(ValueLayout.JAVA_LONG, 64));
        assertTrue(Libc.fcntl(fd0, Libc.F_GETFL, 0) < 0, "the removed region's fd was closed with the old table");
        third.regionSegment(0).set(ValueLayout.JAVA_LONG, 0, 5);
        assertEquals(0, third.indexOf(new RegionSpec(4 * MB, MB, 0x6000_0000L, 12345)), "mmap offset not compared");
        assertEquals(-1, third.indexOf(new RegionSpec(4 * MB, MB / 2, 0x6000_0000L, 0)));
        assertEquals(null, third.withoutRegion(0), "removing the last region leaves no table");
        third.close();
        assertTrue(Libc.fcntl(fd1, Libc.F_GETFL, 0) < 0);
    }

    @Test
    void anOverlappingAddedRegionIsRefusedAndItsFdClosed() throws Exception {
        int fd0 = memfd(MB);
        int fd1 = memfd(MB);
        try (GuestMemory m = GuestMemory.map(List.of(new RegionSpec(0, MB, 0x5000_0000L, 0)), new int[]{fd0})) {
            VirtioException e = assertThrows(VirtioException.class,
                    () -> m.withRegion(new RegionSpec(MB / 2, MB, 0x6000_0000L, 0), fd1));
            assertTrue(e.getMessage().contains("overlap"), e.getMessage());
            assertTrue(Libc.fcntl(fd1, Libc.F_GETFL, 0) < 0, "the refused region's fd was closed");
            // The table is untouched and still owns its region.
            assertTrue(m.translate(8, 8) > 0);
        }
        assertTrue(Libc.fcntl(fd0, Libc.F_GETFL, 0) < 0);
    }
}
