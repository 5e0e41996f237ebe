package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;
import io.vhostblk.testsupport.CephCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rbd driver against a real single-node Ceph cluster (started once for the class). */
@Timeout(300)
class RbdDriverTest {
    private static final int IMAGE_MIB = 64;
    private static CephCluster cluster;
    private static RbdClient client;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = CephCluster.start(Path.of("target"));
        client = new RbdClient(cluster.conf(), "admin", cluster.keyring(), 30);
    }

    @AfterAll
    static void stopCluster() {
        if (cluster != null) {
            cluster.close();
        }
    }

    /** Completions of one queue, by slot. */
    private static final class Results implements DriverCompletion {
        final long[] result = new long[64];
        int completed;

        @Override
        public void complete(BlockRequest request, long res) {
            result[request.slot()] = res;
            completed++;
        }
    }

    /** Waits on the queue's completion fd and reaps until {@code n} completions arrived (bounded). */
    private static void await(DriverQueue q, Results results, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(Libc.POLLFD);
            pfd.set(ValueLayout.JAVA_INT, 0, q.completionFd());
            pfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (results.completed < n) {
                assertTrue(System.nanoTime() < deadline, "no completion within 120 s: " + results.completed + " of " + n);
                Libc.poll(pfd, 1, 1000);
                q.reap();
            }
        }
    }

    private static RbdDriver open(String image, boolean readOnly) throws DriverException {
        return RbdDriver.open(RbdImageName.parse("rbd:" + CephCluster.POOL + "/" + image), readOnly, client);
    }

    @Test
    void writesOnTwoQueuesReadBackAndMatchRbdExport() throws Exception {
        cluster.createImage("data", IMAGE_MIB);
        byte[] expected = new byte[IMAGE_MIB << 20];
        Random rnd = new Random(16);
        try (Arena arena = Arena.ofShared();
             RbdDriver driver = open("data", false)) {
            assertEquals((long) IMAGE_MIB << 20, driver.capacity());
            assertFalse(driver.readOnly());
            Results r0 = new Results();
            Results r1 = new Results();
            try (DriverQueue q0 = driver.openQueue(0, r0); DriverQueue q1 = driver.openQueue(1, r1)) {
                // 32 writes of 4 KiB..1 MiB, each split over two iovec segments, alternating queues.
                int writes = 32;
                for (int i = 0; i < writes; i++) {
                    int len = 4096 << rnd.nextInt(9);
                    long offset = (long) rnd.nextInt((IMAGE_MIB << 20) / 4096 - len / 4096) * 4096;
                    MemorySegment buf = arena.allocate(len, 4096);
                    byte[] data = new byte[len];
                    rnd.nextBytes(data);
                    MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, len);
                    System.arraycopy(data, 0, expected, (int) offset, len);
                    IoVector v = new IoVector(2, arena).clear(false).add(buf, 0, len / 2).add(buf, len / 2, len - len / 2);
                    DriverQueue q = i % 2 == 0 ? q0 : q1;
                    q.submit(new BlockRequest(i, "data", i % 2).set(BlockOp.WRITE, offset, len, v, false));
                    q.flushBatch();
                }
                await(q0, r0, writes / 2);
                await(q1, r1, writes / 2);
                for (int i = 0; i < writes; i++) {
                    assertTrue((i % 2 == 0 ? r0 : r1).result[i] >= 0, "write " + i + ": " + (i % 2 == 0 ? r0 : r1).result[i]);
                }
                // DISCARD 1 MiB (whole and partial objects) and WRITE_ZEROES 64 KiB read back as zeros.
                long discardAt = (4L << 20) + 512;
                Arrays.fill(expected, (int) discardAt, (int) discardAt + (1 << 20), (byte) 0);
                q0.submit(new BlockRequest(40, "data", 0).set(BlockOp.DISCARD, discardAt, 1 << 20, IoVector.NONE, false));
                long zeroAt = 9L << 20;
                Arrays.fill(expected, (int) zeroAt, (int) zeroAt + (64 << 10), (byte) 0);
                q1.submit(new BlockRequest(41, "data", 1).set(BlockOp.WRITE_ZEROES, zeroAt, 64 << 10, IoVector.NONE, true));
                await(q0, r0, writes / 2 + 1);
                await(q1, r1, writes / 2 + 1);
                assertTrue(r0.result[40] >= 0, "discard: " + r0.result[40]);
                assertTrue(r1.result[41] >= 0, "write zeroes: " + r1.result[41]);
                q1.submit(new BlockRequest(42, "data", 1).set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false));
                await(q1, r1, writes / 2 + 2);
                assertEquals(0, r1.result[42]);
                // Read 8 MiB back through the other queue, in one three-segment vector.
                MemorySegment back = arena.allocate(8 << 20, 4096);
                IoVector rv = new IoVector(3, arena).clear(true).add(back, 0, 4096).add(back, 4096, 1 << 20)
                        .add(back, 4096 + (1 << 20), (8 << 20) - 4096 - (1 << 20));
                q0.submit(new BlockRequest(43, "data", 0).set(BlockOp.READ, 4L << 20, 8 << 20, rv, false));
                await(q0, r0, writes / 2 + 2);
                assertEquals(8L << 20, r0.result[43]);
                assertArrayEquals(Arrays.copyOfRange(expected, 4 << 20, 12 << 20), back.toArray(ValueLayout.JAVA_BYTE));
                assertEquals(0, q0.inFlight());
                assertEquals(0, q1.inFlight());
            }
            driver.sync();
        }
        assertArrayEquals(expected, cluster.export("data"), "rbd export differs from what was written");
    }

    @Test
    void aSnapshotIsServedReadOnlyWithItsData() throws Exception {
        Path pattern = Files.createTempFile(Path.of("target"), "pattern", ".bin");
        byte[] data = new byte[4 << 20];
        new Random(7).nextBytes(data);
        Files.write(pattern, data);
        cluster.rbd("import", "--no-progress", "--image-feature", "layering", pattern.toString(), CephCluster.POOL + "/snap-src");
        Files.delete(pattern);
        cluster.rbd("snap", "create", CephCluster.POOL + "/snap-src@one");
        try (Arena arena = Arena.ofShared(); RbdDriver snap = open("snap-src@one", false)) {
            assertTrue(snap.readOnly(), "a snapshot is read-only even when not asked");
            Results r = new Results();
            try (DriverQueue q = snap.openQueue(0, r)) {
                MemorySegment buf = arena.allocate(1 << 20, 4096);
                q.submit(new BlockRequest(0, "snap", 0).set(BlockOp.READ, 1 << 20, 1 << 20,
                        new IoVector(1, arena).clear(true).add(buf, 0, 1 << 20), false));
                q.submit(new BlockRequest(1, "snap", 0).set(BlockOp.WRITE, 0, 1 << 20,
                        new IoVector(1, arena).clear(false).add(buf, 0, 1 << 20), false));
                await(q, r, 2);
                assertArrayEquals(Arrays.copyOfRange(data, 1 << 20, 2 << 20), buf.toArray(ValueLayout.JAVA_BYTE));
                assertEquals(-Errno.EROFS, r.result[1]);
            }
        }
    }

    /** Writes {@code fill} bytes at {@code offset} through {@code q} and waits for the result. */
    private static long write(DriverQueue q, Results r, Arena arena, long offset, int length, byte fill) {
        MemorySegment buf = arena.allocate(length, 4096).fill(fill);
        int before = r.completed;
        q.submit(new BlockRequest(before, "lock", 0).set(BlockOp.WRITE, offset, length,
                new IoVector(1, arena).clear(false).add(buf, 0, length), false));
        await(q, r, before + 1);
        return r.result[before];
    }

    @Test
    void twoBackEndsOnAnExclusiveLockImageHandTheLockOver() throws Exception {
        cluster.rbd("create", "--size", "4M", "--image-feature", "layering,exclusive-lock", CephCluster.POOL + "/locked");
        try (Arena arena = Arena.ofShared(); RbdDriver a = open("locked", false); RbdDriver b = open("locked", false)) {
            Results ra = new Results();
            Results rb = new Results();
            try (DriverQueue qa = a.openQueue(0, ra); DriverQueue qb = b.openQueue(0, rb)) {
                // Each write needs the lock: the other handle is asked to release it, and does.
                assertEquals(65536, write(qa, ra, arena, 0, 65536, (byte) 1));
                assertEquals(65536, write(qb, rb, arena, 65536, 65536, (byte) 2));
                assertEquals(65536, write(qa, ra, arena, 131072, 65536, (byte) 3));
                assertEquals(65536, write(qb, rb, arena, 0, 4096, (byte) 4) + 61440);
            }
        }
        byte[] image = cluster.export("locked");
        assertEquals(4, image[0]);
        assertEquals(1, image[4096]);
        assertEquals(2, image[65536]);
        assertEquals(3, image[131072 + 65535]);
        assertEquals(0, image[196608]);
    }

    @Test
    void resizeGrowsTheImageAndAQueueOpenBeforeWritesPastTheOldEnd() throws Exception {
        cluster.createImage("grow", 4);
        try (Arena arena = Arena.ofShared(); RbdDriver driver = open("grow", false)) {
            Results r = new Results();
            try (DriverQueue q = driver.openQueue(0, r)) {
                assertTrue(write(q, r, arena, 3L << 20, 4096, (byte) 1) >= 0);
                driver.resize(8L << 20);
                assertEquals(8L << 20, driver.capacity());
                // The queue's own handle learned the new size from librbd's header watch.
                assertEquals(65536, write(q, r, arena, (8L << 20) - 65536, 65536, (byte) 7));
            }
            driver.sync();
        }
        byte[] image = cluster.export("grow");
        assertEquals(8 << 20, image.length, "rbd export has the new size");
        assertEquals(1, image[3 << 20]);
        assertEquals(7, image[(8 << 20) - 1]);
        assertEquals(0, image[5 << 20], "the grown part reads zeros");
        try (RbdDriver readOnly = open("grow", true)) {
            DriverException e = assertThrows(DriverException.class, () -> readOnly.resize(16L << 20));
            assertTrue(e.getMessage().contains("is served read-only"), e.getMessage());
        }
    }

    @Test
    void aResizeByAnotherClientIsSeenOnceEveryQueueCanUseIt() throws Exception {
        cluster.createImage("outside", 4);
        java.util.concurrent.BlockingQueue<Long> seen = new java.util.concurrent.LinkedBlockingQueue<>();
        try (Arena arena = Arena.ofShared(); RbdDriver driver = open("outside", false)) {
            driver.capacityListener(seen::add);
            Results r = new Results();
            try (DriverQueue q = driver.openQueue(0, r)) {
                cluster.rbd("resize", "--size", "8M", CephCluster.POOL + "/outside");
                assertEquals(8L << 20, seen.poll(120, java.util.concurrent.TimeUnit.SECONDS),
                        "the listener is told the new size (librbd's update watch)");
                assertEquals(8L << 20, driver.capacity());
                assertEquals(65536, write(q, r, arena, (8L << 20) - 65536, 65536, (byte) 9));
            }
        }
        assertEquals(8 << 20, cluster.export("outside").length);
    }

    @Test
    void devicesOnOneClusterShareOneConnection() throws Exception {
        cluster.createImage("shared-a", 4);
        cluster.createImage("shared-b", 4);
        assertEquals(0, RadosCluster.openConnections());
        try (RbdDriver a = open("shared-a", false); RbdDriver b = open("shared-b", true)) {
            assertEquals(1, RadosCluster.openConnections());
            assertTrue(b.readOnly());
            assertEquals(4L << 20, a.capacity());
        }
        assertEquals(0, RadosCluster.openConnections());
    }

    @Test
    void startErrorsNameWhatFailed() throws Exception {
        DriverException image = assertThrows(DriverException.class, () -> open("no-such-image", false));
        assertTrue(image.getMessage().contains("rbd:rbd/no-such-image") && image.getMessage().contains("no such image"),
                image.getMessage());
        DriverException pool = assertThrows(DriverException.class,
                () -> RbdDriver.open(RbdImageName.parse("rbd:nopool/x"), false, client));
        assertTrue(pool.getMessage().contains("pool 'nopool'") && pool.getMessage().contains("does not exist"), pool.getMessage());
        assertEquals(0, RadosCluster.openConnections(), "a failed open releases the connection");

        Path wrongKey = Files.createTempFile(Path.of("target"), "wrong", ".keyring");
        Files.writeString(wrongKey, "[client.admin]\n\tkey = AQBzJWVlAAAAABAAc2VjcmV0c2VjcmV0c2VjcmV0cw==\n");
        DriverException key = assertThrows(DriverException.class, () -> RbdDriver.open(
                RbdImageName.parse("rbd:rbd/x"), false, new RbdClient(cluster.conf(), "admin", wrongKey, 10)));
        assertTrue(key.getMessage().contains("cannot connect") && key.getMessage().contains("refused the key"), key.getMessage());
        Files.delete(wrongKey);

        Path unreachable = Files.createTempFile(Path.of("target"), "unreachable", ".conf");
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        Files.writeString(unreachable, "[global]\nmon host = v2:127.0.0.1:" + port + "\n");
        DriverException down = assertThrows(DriverException.class, () -> RbdDriver.open(
                RbdImageName.parse("rbd:rbd/x"), false, new RbdClient(unreachable, "admin", cluster.keyring(), 3)));
        assertTrue(down.getMessage().contains("cannot connect") && down.getMessage().contains("ETIMEDOUT"), down.getMessage());
        Files.delete(unreachable);

        cluster.createImage("sized", 2);
        DriverException size = assertThrows(DriverException.class, () -> Drivers.open(DriverKind.RBD,
                Path.of("rbd:rbd/sized"), 1 << 20, false, DriverOptions.DEFAULTS.withRbd(client)));
        assertTrue(size.getMessage().contains("has 2097152 bytes, not the 1048576"), size.getMessage());
        DriverException name = assertThrows(DriverException.class, () -> Drivers.open(DriverKind.RBD,
                Path.of("rbd:just-a-pool"), -1, false, DriverOptions.DEFAULTS.withRbd(client)));
        assertTrue(name.getMessage().contains("rbd:POOL/IMAGE"), name.getMessage());
        assertEquals(0, RadosCluster.openConnections());
    }

    @Test
    void aRequestToAnUnansweringClusterFailsAfterTheTimeout() throws Exception {
        cluster.createImage("stalled", 4);
        RbdClient impatient = new RbdClient(cluster.conf(), "admin", cluster.keyring(), 3);
        try (Arena arena = Arena.ofShared();
             RbdDriver driver = RbdDriver.open(RbdImageName.parse("rbd:rbd/stalled"), false, impatient)) {
            Results r = new Results();
            try (DriverQueue q = driver.openQueue(0, r)) {
                MemorySegment buf = arena.allocate(4096, 4096);
                // signal() returns once every OSD thread is stopped: the write below cannot be answered.
                cluster.signal("osd.0", true);
                try {
                    q.submit(new BlockRequest(0, "stalled", 0).set(BlockOp.WRITE, 0, 4096,
                            new IoVector(1, arena).clear(false).add(buf, 0, 4096), false));
                    await(q, r, 1);
                } finally {
                    cluster.signal("osd.0", false);
                }
                assertEquals(-Errno.ETIMEDOUT, r.result[0]);
            }
        }
    }
}
