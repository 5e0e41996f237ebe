package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(120)
class IoUringDriverTest {
    private static final long IMAGE_SIZE = 32L << 20;

    /** Images live under target/ (the real disk), where O_DIRECT works; tmpfs may refuse it. */
    private Path dir;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollFd = arena.allocate(Libc.POLLFD);

    @BeforeEach
    void makeDir() throws IOException {
        Files.createDirectories(Path.of("target"));
        dir = Files.createTempDirectory(Path.of("target"), "io-uring-test");
    }

    @AfterEach
    void removeDir() throws IOException {
        arena.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /** One generated request, with its own buffers for each driver (shared for writes). */
    private record Op(BlockOp op, long offset, long length, boolean unmap,
                      MemorySegment uringBuf, IoVector uringIov, MemorySegment fileBuf, IoVector fileIov, int segments) {
    }

    @Test
    void randomWorkloadMatchesTheFileDriver() throws Exception {
        Path uringImg = dir.resolve("uring.img");
        Path fileImg = dir.resolve("file.img");
        Random rnd = new Random(20250101);
        int requests = 0;
        try (IoUringDriver uring = IoUringDriver.open(uringImg, IMAGE_SIZE, false, DriverOptions.DEFAULTS.withRing(32, 64));
             FileDriver file = FileDriver.open(fileImg, IMAGE_SIZE, false)) {
            assertTrue(uring.direct(), "target/ is on a disk file system, where O_DIRECT must work");
            long[] uringResults = new long[128];
            long[] fileResults = new long[128];
            int[] completions = new int[128];
            try (DriverQueue uq = uring.openQueue(0, (r, res) -> {
                     uringResults[r.slot()] = res;
                     completions[r.slot()]++;
                 });
                 DriverQueue fq = file.openQueue(0, (r, res) -> fileResults[r.slot()] = res)) {
                for (int batch = 0; batch < 60; batch++) {
                    try (Arena batchArena = Arena.ofConfined()) {
                        List<Op> ops = generateBatch(rnd, batchArena, 1 + rnd.nextInt(128));
                        Arrays.fill(completions, 0);
                        BlockRequest[] ureqs = new BlockRequest[ops.size()];
                        for (int i = 0; i < ops.size(); i++) {
                            Op o = ops.get(i);
                            ureqs[i] = new BlockRequest(i, "uring", 0).set(o.op, o.offset, o.length, o.uringIov, o.unmap);
                            uq.submit(ureqs[i]);
                        }
                        uq.flushBatch();
                        TestIo.drain(uq, pollFd);
                        for (int i = 0; i < ops.size(); i++) {
                            Op o = ops.get(i);
                            fq.submit(new BlockRequest(i, "file", 0).set(o.op, o.offset, o.length, o.fileIov, o.unmap));
                        }
                        for (int i = 0; i < ops.size(); i++) {
                            Op o = ops.get(i);
                            assertEquals(1, completions[i], "completions of " + ureqs[i]);
                            assertEquals(fileResults[i], uringResults[i], "result of " + ureqs[i]);
                            if (o.op == BlockOp.READ) {
                                assertArrayEquals(o.fileBuf.toArray(ValueLayout.JAVA_BYTE), o.uringBuf.toArray(ValueLayout.JAVA_BYTE),
                                        "data of " + ureqs[i]);
                            }
                        }
                        requests += ops.size();
                    }
                }
            }
            uring.sync();
        }
        assertTrue(requests > 1000, "workload too small: " + requests);
        assertEquals(-1, Arrays.mismatch(Files.readAllBytes(fileImg), Files.readAllBytes(uringImg)), "images differ");
    }

    /** Requests with pairwise disjoint ranges, so their order inside the batch does not matter. */
    private List<Op> generateBatch(Random rnd, Arena a, int count) {
        List<Op> ops = new ArrayList<>();
        List<long[]> used = new ArrayList<>();
        for (int n = 0; n < count; n++) {
            int pick = rnd.nextInt(100);
            BlockOp op = pick < 40 ? BlockOp.READ : pick < 75 ? BlockOp.WRITE : pick < 83 ? BlockOp.DISCARD
                    : pick < 94 ? BlockOp.WRITE_ZEROES : BlockOp.FLUSH;
            if (op == BlockOp.FLUSH) {
                ops.add(new Op(op, 0, 0, false, MemorySegment.NULL, IoVector.NONE, MemorySegment.NULL, IoVector.NONE, 0));
                continue;
            }
            long sectors = Math.min(2048, (1L << rnd.nextInt(12)) + rnd.nextInt(1 << rnd.nextInt(11)));
            long length = sectors * 512;
            long offset = -1;
            for (int attempt = 0; attempt < 10 && offset < 0; attempt++) {
                long candidate = 512L * rnd.nextLong((IMAGE_SIZE - length) / 512 + 1);
                boolean free = used.stream().noneMatch(u -> candidate < u[1] && u[0] < candidate + length);
                offset = free ? candidate : -1;
            }
            if (offset < 0) {
                continue;
            }
            used.add(new long[]{offset, offset + length});
            if (op == BlockOp.DISCARD || op == BlockOp.WRITE_ZEROES) {
                ops.add(new Op(op, offset, length, rnd.nextBoolean(), MemorySegment.NULL, IoVector.NONE,
                        MemorySegment.NULL, IoVector.NONE, 0));
                continue;
            }
            // Mostly sector-aligned segment boundaries (O_DIRECT); one in ten at odd bytes (buffered retry path).
            boolean odd = rnd.nextInt(10) == 0;
            int segments = (int) Math.min(1 + rnd.nextInt(4), sectors);
            long[] cuts = new long[segments + 1];
            cuts[segments] = length;
            for (int s = 1; s < segments; s++) {
                cuts[s] = odd ? s * (length / segments) + 1 + rnd.nextInt(255) : 512L * (s * sectors / segments);
            }
            // An odd request also starts its buffer off the sector grid.
            MemorySegment uBuf = a.allocate(length + 512, 4096).asSlice(odd ? 1 + rnd.nextInt(511) : 0, length);
            MemorySegment fBuf = uBuf;
            if (op == BlockOp.WRITE) {
                byte[] data = new byte[(int) length];
                rnd.nextBytes(data);
                MemorySegment.copy(data, 0, uBuf, ValueLayout.JAVA_BYTE, 0, data.length);
            } else {
                fBuf = a.allocate(length + 512, 4096).asSlice(uBuf.address() & 511, length);
                uBuf.fill((byte) 0xee);
                fBuf.fill((byte) 0xee);
            }
            ops.add(new Op(op, offset, length, false, uBuf, split(a, uBuf, cuts), fBuf, split(a, fBuf, cuts), segments));
        }
        return ops;
    }

    private static IoVector split(Arena a, MemorySegment buf, long[] cuts) {
        MemorySegment[] parts = new MemorySegment[cuts.length - 1];
        for (int i = 0; i < parts.length; i++) {
            parts[i] = buf.asSlice(cuts[i], cuts[i + 1] - cuts[i]);
        }
        return TestIo.iov(a, parts);
    }

    @Test
    void readPastEndOfShortImageGivesZeros() throws Exception {
        Path img = dir.resolve("short.img");
        List<Long> results = new ArrayList<>();
        try (IoUringDriver d = IoUringDriver.open(img, 16384, false, DriverOptions.DEFAULTS);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(8192, 4096);
            buf.fill((byte) 1);
            // Truncated behind the driver's back: the O_DIRECT read comes back short.
            Files.write(img, new byte[]{9, 9}, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
            IoVector iov = TestIo.iov(arena, buf.asSlice(0, 4096), buf.asSlice(4096, 4096));
            q.submit(new BlockRequest(0, "dev", 0).set(BlockOp.READ, 0, 8192, iov, false));
            q.flushBatch();
            TestIo.drain(q, pollFd);
            assertEquals(List.of(8192L), results);
            assertEquals(9, buf.get(ValueLayout.JAVA_BYTE, 1));
            for (long i = 2; i < 8192; i++) {
                assertEquals(0, buf.get(ValueLayout.JAVA_BYTE, i), "byte " + i);
            }
        }
    }

    @Test
    void writeThroughAReadOnlyDescriptorSurfacesEBADF() throws Exception {
        Path img = dir.resolve("badf.img");
        Files.write(img, new byte[8192]);
        int fd = Libc.open(img.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        assertTrue(fd >= 0);
        List<Long> results = new ArrayList<>();
        // A driver that believes it may write, over a descriptor opened read-only: the kernel says EBADF.
        try (IoUringDriver d = new IoUringDriver(img, fd, fd, 8192, false, DriverOptions.DEFAULTS.withDirect(false));
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(4096, 4096);
            q.submit(new BlockRequest(1, "dev", 0).set(BlockOp.WRITE, 0, 4096, TestIo.iov(arena, buf), false));
            q.submit(new BlockRequest(2, "dev", 0).set(BlockOp.DISCARD, 0, 4096, IoVector.NONE, false));
            q.submit(new BlockRequest(3, "dev", 0).set(BlockOp.READ, 4096, 4096, TestIo.iov(arena, buf), false));
            q.flushBatch();
            TestIo.drain(q, pollFd);
            assertEquals(List.of(-(long) Errno.EBADF, -(long) Errno.EBADF, 4096L), results.stream().sorted().toList());
        }
    }

    @Test
    void tooManySegmentsSurfaceEINVALLikeTheFileDriver() throws Exception {
        Path img = dir.resolve("iov.img");
        List<Long> results = new ArrayList<>();
        try (IoUringDriver d = IoUringDriver.open(img, 1 << 20, false, DriverOptions.DEFAULTS);
             FileDriver f = FileDriver.open(img, -1, false);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res));
             DriverQueue fq = f.openQueue(0, (r, res) -> results.add(res))) {
            // UIO_MAXIOV is 1024 segments; the kernel refuses more, on O_DIRECT and then on the buffered retry.
            MemorySegment buf = arena.allocate(1025 * 512L, 4096);
            MemorySegment[] parts = new MemorySegment[1025];
            for (int i = 0; i < parts.length; i++) {
                parts[i] = buf.asSlice(i * 512L, 512);
            }
            IoVector iov = TestIo.iov(arena, parts);
            q.submit(new BlockRequest(0, "dev", 0).set(BlockOp.READ, 0, buf.byteSize(), iov, false));
            q.flushBatch();
            TestIo.drain(q, pollFd);
            fq.submit(new BlockRequest(0, "dev", 0).set(BlockOp.READ, 0, buf.byteSize(), iov, false));
            assertEquals(List.of(-(long) Errno.EINVAL, -(long) Errno.EINVAL), results);
        }
    }

    @Test
    void moreRequestsThanRingEntriesAllCompleteExactlyOnce() throws Exception {
        Path img = dir.resolve("full.img");
        int count = 100;
        int[] completions = new int[count];
        long[] results = new long[count];
        try (IoUringDriver d = IoUringDriver.open(img, 1 << 20, false, DriverOptions.DEFAULTS.withRing(8, 16));
             DriverQueue q = d.openQueue(0, (r, res) -> {
                 completions[r.slot()]++;
                 results[r.slot()] = res;
             })) {
            MemorySegment bufs = arena.allocate(count * 4096L, 4096);
            for (int i = 0; i < count; i++) {
                bufs.asSlice(i * 4096L, 4096).fill((byte) i);
            }
            for (int i = 0; i < count; i++) {
                BlockOp op = i % 10 == 9 ? BlockOp.FLUSH : BlockOp.WRITE;
                q.submit(new BlockRequest(i, "dev", 0).set(op, i * 4096L, op == BlockOp.FLUSH ? 0 : 4096,
                        TestIo.iov(arena, bufs.asSlice(i * 4096L, 4096)), false));
            }
            assertEquals(count, q.inFlight());
            q.flushBatch();
            TestIo.drain(q, pollFd);
            for (int i = 0; i < count; i++) {
                assertEquals(1, completions[i], "completions of slot " + i);
                assertEquals(i % 10 == 9 ? 0 : 4096, results[i], "result of slot " + i);
            }
        }
        byte[] data = Files.readAllBytes(img);
        for (int i = 0; i < count; i++) {
            assertEquals(i % 10 == 9 ? 0 : (byte) i, data[i * 4096 + 100], "block " + i);
        }
    }

    @Test
    void requestsEnterTheKernelEverySubmitBatchSqesAndTheRestAtFlush() throws Exception {
        Path img = dir.resolve("batch.img");
        int count = 7;
        long[] results = new long[count];
        MemorySegment bufs = arena.allocate(count * 4096L, 4096);
        for (int batch : new int[] {0, 1, 2, 3}) {
            Arrays.fill(results, -1);
            try (IoUringDriver d = IoUringDriver.open(img, 1 << 20, false, DriverOptions.DEFAULTS.withSubmitBatch(batch));
                 DriverQueue dq = d.openQueue(0, (r, res) -> results[r.slot()] = res)) {
                IoUringQueue q = (IoUringQueue) dq;
                for (int i = 0; i < count; i++) {
                    q.submit(new BlockRequest(i, "dev", 0).set(BlockOp.READ, i * 4096L, 4096,
                            TestIo.iov(arena, bufs.asSlice(i * 4096L, 4096)), false));
                    int expected = batch == 0 ? i + 1 : (i + 1) % batch;
                    assertEquals(expected, q.unsubmitted(), "SQEs not yet entered after request " + i + ", submit batch " + batch);
                }
                q.flushBatch();
                assertEquals(0, q.unsubmitted(), "flushBatch enters the rest");
                TestIo.drain(q, pollFd);
                for (int i = 0; i < count; i++) {
                    assertEquals(4096, results[i], "result of slot " + i + ", submit batch " + batch);
                }
            }
        }
    }

    @Test
    void discardAndWriteZeroesReadBackZeros() throws Exception {
        Path img = dir.resolve("z.img");
        List<Long> results = new ArrayList<>();
        try (IoUringDriver d = IoUringDriver.open(img, 1 << 20, false, DriverOptions.DEFAULTS);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(65536, 4096);
            buf.fill((byte) 0x5a);
            q.submit(new BlockRequest(0, "dev", 0).set(BlockOp.WRITE, 0, 65536, TestIo.iov(arena, buf), false));
            q.flushBatch();
            TestIo.drain(q, pollFd);
            q.submit(new BlockRequest(1, "dev", 0).set(BlockOp.DISCARD, 4096, 8192, IoVector.NONE, false));
            q.submit(new BlockRequest(2, "dev", 0).set(BlockOp.WRITE_ZEROES, 32768, 4096, IoVector.NONE, false));
            q.submit(new BlockRequest(3, "dev", 0).set(BlockOp.WRITE_ZEROES, 40960, 4096, IoVector.NONE, true));
            q.submit(new BlockRequest(4, "dev", 0).set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false));
            q.flushBatch();
            TestIo.drain(q, pollFd);
            assertEquals(List.of(65536L, 0L, 0L, 0L, 0L), results);
        }
        byte[] data = Files.readAllBytes(img);
        for (int i = 0; i < 65536; i++) {
            boolean zeroed = (i >= 4096 && i < 12288) || (i >= 32768 && i < 36864) || (i >= 40960 && i < 45056);
            assertEquals(zeroed ? 0 : 0x5a, data[i] & 0xff, "byte " + i);
        }
    }

    @Test
    void readOnlyDriverRefusesWritesWithEROFS() throws Exception {
        Path img = dir.resolve("ro.img");
        Files.write(img, new byte[4096]);
        List<Long> results = new ArrayList<>();
        try (IoUringDriver d = IoUringDriver.open(img, -1, true, DriverOptions.DEFAULTS);
             DriverQueue q = d.openQueue(0, (r, res) -> results.add(res))) {
            MemorySegment buf = arena.allocate(512, 512);
            q.submit(new BlockRequest(0, "dev", 0).set(BlockOp.WRITE, 0, 512, TestIo.iov(arena, buf), false));
            q.submit(new BlockRequest(1, "dev", 0).set(BlockOp.WRITE_ZEROES, 0, 512, IoVector.NONE, true));
            q.submit(new BlockRequest(2, "dev", 0).set(BlockOp.READ, 0, 512, TestIo.iov(arena, buf), false));
            q.flushBatch();
            TestIo.drain(q, pollFd);
            assertEquals(List.of(-(long) Errno.EROFS, -(long) Errno.EROFS, 512L), results);
        }
    }

    @Test
    void kickEventfdIsReportedThroughTheRing() throws Exception {
        Path img = dir.resolve("kick.img");
        int[] kicks = new int[1];
        try (IoUringDriver d = IoUringDriver.open(img, 1 << 20, false, DriverOptions.DEFAULTS);
             DriverQueue q = d.openQueue(0, (r, res) -> { });
             EventFd kick = EventFd.create(true)) {
            KickAware ka = (KickAware) q;
            ka.armKick(kick.fd(), () -> kicks[0]++);
            q.flushBatch();
            for (int round = 1; round <= 3; round++) {
                kick.signal();
                assertEquals(0, ka.awaitCompletions());
                q.reap();
                assertEquals(round, kicks[0], "kicks seen after signal " + round);
                assertEquals(1, kick.drain(), "the loop still drains the kick fd itself");
            }
            ka.disarmKick();
            q.flushBatch();
            kick.signal();
            q.reap();
            assertEquals(3, kicks[0], "no kick reported once disarmed");
        }
    }

    @Test
    void steadyStateIoAllocatesNothing() throws Exception {
        Path img = dir.resolve("alloc.img");
        int depth = 32;
        long[] done = new long[1];
        try (IoUringDriver d = IoUringDriver.open(img, 4 << 20, false, DriverOptions.DEFAULTS);
             DriverQueue q = d.openQueue(0, (r, res) -> done[0] += res)) {
            MemorySegment bufs = arena.allocate(depth * 4096L, 4096);
            BlockRequest[] reqs = new BlockRequest[depth];
            for (int i = 0; i < depth; i++) {
                reqs[i] = new BlockRequest(i, "dev", 0).set(i % 2 == 0 ? BlockOp.READ : BlockOp.WRITE, i * 8192L, 4096,
                        TestIo.iov(arena, bufs.asSlice(i * 4096L, 4096)), false);
            }
            // Warm up until the I/O path is compiled, then measure. The drivers' tests run with
            // -XX:-BackgroundCompilation (drivers/pom.xml): a method is compiled when it crosses its
            // threshold, with this thread waiting, instead of running in the interpreter or C1 (which
            // allocate what C2's escape analysis removes) for as long as the compiler threads take.
            long before = 0;
            for (int round = 0; round < 8000; round++) {
                if (round == 7000) {
                    before = TestIo.allocatedBytes();
                }
                for (BlockRequest r : reqs) {
                    q.submit(r);
                }
                q.flushBatch();
                TestIo.drain(q, pollFd);
            }
            long allocated = TestIo.allocatedBytes() - before;
            assertEquals(8000L * depth * 4096, done[0]);
            // One allocation per I/O is at least 16 bytes (512 KB here); half that leaves room for one-off
            // allocations on this thread (a deoptimization and recompile lands here: tens of KB).
            assertTrue(allocated < 8 * 32_000, "allocated " + allocated + " bytes over 32,000 I/Os");
        }
    }
}
