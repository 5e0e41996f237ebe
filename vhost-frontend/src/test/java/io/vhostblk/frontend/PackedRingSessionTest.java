package io.vhostblk.frontend;

import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.InflightRegion;
import io.vhostblk.virtio.PackedVirtqueue;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A packed virtqueue through vhost-user: VIRTIO_F_RING_PACKED is offered, the vring base carries
 * both positions and wrap counters as QEMU encodes them, a cleanly stopped ring resumes where it
 * stopped even when the front-end sends a stale base (QEMU cannot read a packed ring's position
 * after losing the back-end), and a ring a dead back-end left running is refused, not guessed.
 */
class PackedRingSessionTest {
    private static final int BLOCK = 512;
    /** A fresh packed ring: avail and used position 0, both wrap counters 1. */
    private static final int FRESH_BASE = PackedVirtqueue.WRAP | PackedVirtqueue.WRAP << 16;

    @TempDir
    Path dir;

    @Test
    void offeredAndServedAcrossManyWrapsThenResumedFromTheInflightRecordAfterARestart() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("packed", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK, true)) {
            assertEquals(FRESH_BASE, fe.packedRing.vringBase());
            fe.connect(socket, FRESH_BASE, true);
            assertTrue((fe.fe.getFeatures() & VhostUserProtocol.F_RING_PACKED) != 0, "VIRTIO_F_RING_PACKED offered");
            // 3 descriptors per request on a 16-entry ring: 30 requests wrap it several times.
            for (int i = 0; i < 15; i++) {
                writeAndReadBack(fe, i);
            }
            int base = fe.fe.getVringBase(0);
            assertEquals(fe.packedRing.vringBase(), base, "GET_VRING_BASE: avail | wrap << 15, used likewise << 16");
            assertNotEquals(FRESH_BASE, base);
            fe.hangUp();
            waitUntilDisconnected(server);
            InflightRegion region = InflightRegion.of(fe.inflight, BlkTestFrontEnd.RING_SIZE);
            assertEquals(InflightRegion.PACKED_VERSION, region.version());
            assertEquals(base, region.packedResumeBase(FRESH_BASE), "the stop was recorded with its base");

            // QEMU reconnects with the base it last knew, here the fresh one: the record wins. Had the
            // back-end used the stale base, it would wait at position 0 for a request that never comes.
            fe.connect(socket, FRESH_BASE, true);
            for (int i = 15; i < 20; i++) {
                writeAndReadBack(fe, i);
            }
        }
    }

    @Test
    void aRingLeftRunningByADeadBackEndIsRefused() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("packed", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK, true)) {
            fe.connect(socket, FRESH_BASE, true);
            writeAndReadBack(fe, 0);
            fe.hangUp();
            waitUntilDisconnected(server);
            // Play a back-end that was killed while the ring ran: its record still says "running".
            InflightRegion region = InflightRegion.of(fe.inflight, BlkTestFrontEnd.RING_SIZE);
            region.packedRecord(true, FRESH_BASE);
            VhostUserException refused = assertThrows(VhostUserException.class, () -> fe.connect(socket, FRESH_BASE, true));
            assertTrue(refused.getMessage().contains("SET_VRING_ENABLE"), refused.getMessage());
            assertTrue(server.connected(), "a refused ring start does not end the session");
        }
    }

    @Test
    void aRingThatFailsToStartIsNotRecordedAsRunning() throws Exception {
        Path socket = dir.resolve("blk.sock");
        // The device accepts queues of 8 entries; the front-end's ring has 16: the start fails.
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("packed", socket, ram, 8);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK, true)) {
            assertThrows(VhostUserException.class, () -> fe.connect(socket, FRESH_BASE, true));
            InflightRegion region = InflightRegion.of(fe.inflight, BlkTestFrontEnd.RING_SIZE);
            assertEquals(FRESH_BASE, region.packedResumeBase(0),
                    "a failed start leaves a clean-stop record, so a later start is not refused");
            assertTrue(server.connected());
        }
    }

    private static void writeAndReadBack(BlkTestFrontEnd fe, int i) {
        MemorySegment data = fe.dataOf(0, BLOCK);
        data.fill((byte) (0x40 + i));
        assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_OUT, i, BLOCK), "write " + i);
        data.fill((byte) 0);
        assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, i, BLOCK), "read " + i);
        assertEquals(0x40 + i, data.get(ValueLayout.JAVA_BYTE, BLOCK - 1), "read back " + i);
    }

    private static void waitUntilDisconnected(VhostUserServer server) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (server.connected() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(false, server.connected(), "the session ended");
    }
}
