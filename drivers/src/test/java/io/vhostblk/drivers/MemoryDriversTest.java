package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryDriversTest {
    private final Arena arena = Arena.ofAuto();
    private final List<Long> results = new ArrayList<>();

    private long run(DriverQueue q, BlockRequest r) {
        results.clear();
        q.submit(r);
        q.flushBatch();
        assertEquals(1, results.size(), "a synchronous driver completes inside submit");
        return results.get(0);
    }

    @Test
    void ramDiskKeepsScatteredWritesAndZeroesDiscards() throws Exception {
        try (RamDriver d = RamDriver.create(1 << 20);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            byte[] pattern = new byte[8192];
            new Random(3).nextBytes(pattern);
            MemorySegment a = arena.allocate(1000);
            MemorySegment b = arena.allocate(7192);
            MemorySegment.copy(pattern, 0, a, ValueLayout.JAVA_BYTE, 0, 1000);
            MemorySegment.copy(pattern, 1000, b, ValueLayout.JAVA_BYTE, 0, 7192);
            assertEquals(8192, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.WRITE, 4096, 8192, TestIo.iov(arena, a, b), false)));

            MemorySegment back = arena.allocate(8192);
            assertEquals(8192, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.READ, 4096, 8192, TestIo.iov(arena, back), false)));
            assertArrayEquals(pattern, back.toArray(ValueLayout.JAVA_BYTE));

            assertEquals(0, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.DISCARD, 4096, 512, IoVector.NONE, false)));
            assertEquals(0, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.WRITE_ZEROES, 8192, 1024, IoVector.NONE, false)));
            assertEquals(0, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false)));
            assertEquals(8192, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.READ, 4096, 8192, TestIo.iov(arena, back), false)));
            for (int i = 0; i < 8192; i++) {
                boolean zeroed = i < 512 || (i >= 4096 && i < 5120);
                assertEquals(zeroed ? 0 : pattern[i], back.get(ValueLayout.JAVA_BYTE, i), "byte " + i);
            }
        }
    }

    @Test
    void ramDiskRefusesRangesBeyondItsEndAndShortBuffers() throws Exception {
        try (RamDriver d = RamDriver.create(8192);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(4096);
            assertEquals(-Errno.EINVAL, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.READ, 6144, 4096, TestIo.iov(arena, buf), false)));
            assertEquals(-Errno.EINVAL, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.WRITE, 0, 8192, TestIo.iov(arena, buf), false)));
            assertEquals(-Errno.EINVAL, run(q, new BlockRequest(0, "ram", 0).set(BlockOp.DISCARD, 8192, 512, IoVector.NONE, false)));
        }
        assertThrows(DriverException.class, () -> RamDriver.create(1000));
    }

    @Test
    void nullDeviceLeavesReadBuffersUntouchedUnlessAskedForZeros() throws Exception {
        MemorySegment buf = arena.allocate(4096);
        try (NullDriver d = NullDriver.create(1 << 30, false);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            buf.fill((byte) 7);
            assertEquals(4096, run(q, new BlockRequest(0, "null", 0).set(BlockOp.WRITE, 0, 4096, TestIo.iov(arena, buf), false)));
            assertEquals(4096, run(q, new BlockRequest(0, "null", 0).set(BlockOp.READ, 0, 4096, TestIo.iov(arena, buf), false)));
            assertEquals(7, buf.get(ValueLayout.JAVA_BYTE, 100));
            assertFalse(d.supportsDiscard(), "discarded ranges would not read back as zeros");
        }
        try (NullDriver d = NullDriver.create(1 << 30, true);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment a = buf.asSlice(0, 1000);
            MemorySegment b = buf.asSlice(1000, 3096);
            assertEquals(4096, run(q, new BlockRequest(0, "null", 0).set(BlockOp.READ, 1 << 20, 4096, TestIo.iov(arena, a, b), false)));
            for (int i = 0; i < 4096; i++) {
                assertEquals(0, buf.get(ValueLayout.JAVA_BYTE, i), "byte " + i);
            }
            assertEquals(-Errno.EINVAL, run(q, new BlockRequest(0, "null", 0).set(BlockOp.READ, 1L << 30, 512, TestIo.iov(arena, a), false)));
            assertTrue(d.supportsDiscard());
        }
    }

    @Test
    void memoryDriversAllocateNothingPerRequest() throws Exception {
        try (RamDriver ram = RamDriver.create(1 << 20); NullDriver nul = NullDriver.create(1 << 20, true)) {
            long[] done = new long[1];
            DriverQueue rq = ram.openQueue(0, (r, res) -> done[0] += res);
            DriverQueue nq = nul.openQueue(0, (r, res) -> done[0] += res);
            MemorySegment buf = arena.allocate(4096);
            BlockRequest write = new BlockRequest(0, "ram", 0).set(BlockOp.WRITE, 8192, 4096, TestIo.iov(arena, buf.asSlice(0, 512), buf.asSlice(512)), false);
            BlockRequest read = new BlockRequest(1, "ram", 0).set(BlockOp.READ, 8192, 4096, TestIo.iov(arena, buf), false);
            BlockRequest zero = new BlockRequest(2, "ram", 0).set(BlockOp.WRITE_ZEROES, 8192, 4096, IoVector.NONE, false);
            long before = 0; // compiled synchronously (drivers/pom.xml): warm-up counts decide what runs compiled
            for (int i = 0; i < 200_000; i++) {
                if (i == 100_000) {
                    before = TestIo.allocatedBytes();
                }
                rq.submit(write);
                rq.submit(read);
                rq.submit(zero);
                nq.submit(read);
            }
            long allocated = TestIo.allocatedBytes() - before;
            assertEquals(200_000L * 3 * 4096, done[0]);
            assertTrue(allocated < 40_000, "allocated " + allocated + " bytes over 400,000 requests");
        }
    }

    @Test
    void factoryPicksIoUringWhenAvailableAndBuildsMemoryDrivers() throws Exception {
        IoUringProbe probe = IoUringDriver.probe();
        assertTrue(probe.available(), "io_uring must work on the test machine: " + probe.reason());
        Path img = Path.of("target", "factory-" + ProcessHandle.current().pid() + ".img");
        try (BlockDriver auto = Drivers.open(DriverKind.parse("auto"), img, 1 << 20, false, DriverOptions.DEFAULTS)) {
            assertInstanceOf(IoUringDriver.class, auto);
            assertEquals("io_uring", auto.kind());
        } finally {
            java.nio.file.Files.deleteIfExists(img);
        }
        try (BlockDriver ram = Drivers.open(DriverKind.RAM, null, 1 << 20, false, DriverOptions.DEFAULTS);
             BlockDriver nul = Drivers.open(DriverKind.parse("null"), null, 1 << 20, false, DriverOptions.DEFAULTS.withReadZeroes(true))) {
            assertEquals("ram", ram.kind());
            assertEquals("null:1048576,read-zeroes", nul.target());
        }
        assertEquals(DriverKind.IO_URING, DriverKind.parse("io-uring"));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> DriverKind.parse("nvme"));
        assertTrue(bad.getMessage().contains("io_uring"), bad.getMessage());
    }

    @Test
    void refusalsExplainTheCauseAndTheFix() {
        assertTrue(IoUringProbe.explain(Errno.EPERM).contains("kernel.io_uring_disabled"));
        assertTrue(IoUringProbe.explain(Errno.EPERM).contains("seccomp"));
        assertTrue(IoUringProbe.explain(Errno.ENOSYS).contains("5.6"));
        assertTrue(IoUringProbe.explain(Errno.ENOMEM).contains("ulimit -l"));
    }
}
