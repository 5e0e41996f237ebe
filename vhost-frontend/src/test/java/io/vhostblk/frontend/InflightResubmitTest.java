package io.vhostblk.frontend;

import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.InflightRegion;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.SplitRingDriver;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The inflight area through the protocol: the back-end creates it, the front-end keeps it, and a
 * back-end that finds requests a dead predecessor left in flight runs them, in their original
 * order, without redoing the ones already in the used ring.
 */
class InflightResubmitTest {
    private static final int BLOCK = 512;

    @TempDir
    Path dir;

    @Test
    void requestsLeftInFlightByADeadBackEndAreRunInFetchOrderAndCompletedOnesAreNotRedone() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("inflight", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            // A first back-end ran one read (slot 0) to completion; it flagged the region itself.
            fe.connect(socket, 0, true);
            fe.dataOf(0, BLOCK).fill((byte) 0x11);
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_OUT, 0, BLOCK));
            fe.dataOf(0, BLOCK).fill((byte) 0);
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, 0, BLOCK));
            assertEquals(0x11, fe.dataOf(0, BLOCK).get(ValueLayout.JAVA_BYTE, 7));
            InflightRegion region = InflightRegion.of(fe.inflight, BlkTestFrontEnd.RING_SIZE);
            assertEquals(InflightRegion.VERSION, region.version(), "the back-end initialised the shared area");
            assertEquals(2, region.usedIdx());
            fe.hangUp();
            waitUntilDisconnected(server);

            // Play a back-end that fetched three writes to sector 8 and died before completing any:
            // it fetched them in the order slot 3, 2, 1 (counters rising in that order).
            int[] heads = new int[4];
            for (int slot = 1; slot <= 3; slot++) {
                fe.dataOf(slot, BLOCK).fill((byte) (0x20 + slot));
                heads[slot] = fe.offer(slot, VirtioBlk.T_OUT, 8, BLOCK);
            }
            fe.ring.publish();
            region.recover(fe.ring.usedIdx(), BlkTestFrontEnd.RING_SIZE, 0);
            for (int slot = 3; slot >= 1; slot--) {
                region.markInflight(heads[slot]);
            }
            // The read in slot 0 is done: if it ran again, its buffer would fill again.
            fe.dataOf(0, BLOCK).fill((byte) 0);

            // QEMU reconnects and, having lost the avail index, sends the used index as the base.
            fe.connect(socket, fe.ring.usedIdx(), true);
            int[] order = {fe.awaitUsed(), fe.awaitUsed(), fe.awaitUsed()};
            assertEquals(heads[3], order[0]);
            assertEquals(heads[2], order[1]);
            assertEquals(heads[1], order[2]);
            assertEquals(5, fe.ring.usedIdx());
            assertEquals(0, fe.dataOf(0, BLOCK).get(ValueLayout.JAVA_BYTE, 7), "the completed read was not redone");
            // The last one fetched is the last one written, so sector 8 holds slot 1's data.
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, 8, BLOCK));
            MemorySegment read = fe.dataOf(0, BLOCK);
            assertEquals(0x21, read.get(ValueLayout.JAVA_BYTE, 0));
            assertEquals(0x21, read.get(ValueLayout.JAVA_BYTE, BLOCK - 1));
            for (int h = 0; h < BlkTestFrontEnd.RING_SIZE; h++) {
                assertEquals(false, region.isInflight(h), "head " + h + " still flagged");
            }
            assertEquals(6, region.usedIdx());
        }
    }

    private static void waitUntilDisconnected(VhostUserServer server) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (server.connected() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(false, server.connected(), "the session ended");
    }
}
