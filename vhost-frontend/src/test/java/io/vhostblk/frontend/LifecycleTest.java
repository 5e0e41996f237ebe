package io.vhostblk.frontend;

import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.GuestMemory.RegionSpec;
import io.vhostblk.virtio.InflightRegion;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.GuestRam;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Connection lifecycle edge cases against a real virtio-blk device over a real socket. */
class LifecycleTest {
    private static final int BLOCK = 4096;
    private static final int SECTORS = BLOCK / VirtioBlk.SECTOR_SIZE;
    /** As many 3-descriptor requests as the ring holds. */
    private static final int PENDING = BlkTestFrontEnd.RING_SIZE / 3;

    @TempDir
    Path dir;

    /** Offers a write of block {@code slot} (its data: the slot number) in every slot; returns the heads. */
    private static int[] offerWrites(BlkTestFrontEnd fe, int count, int tag) {
        int[] heads = new int[count];
        for (int slot = 0; slot < count; slot++) {
            fe.dataOf(slot, BLOCK).fill((byte) (tag + slot));
            heads[slot] = fe.offer(slot, VirtioBlk.T_OUT, (long) slot * SECTORS, BLOCK);
        }
        fe.publishAndKick();
        return heads;
    }

    /** Reads block {@code slot} back and checks it holds {@code tag + slot}. */
    private static void assertBlock(BlkTestFrontEnd fe, int slot, int tag) {
        fe.dataOf(0, BLOCK).fill((byte) 0);
        assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, (long) slot * SECTORS, BLOCK));
        assertEquals((byte) (tag + slot), fe.dataOf(0, BLOCK).get(ValueLayout.JAVA_BYTE, 0), "block " + slot);
        assertEquals((byte) (tag + slot), fe.dataOf(0, BLOCK).get(ValueLayout.JAVA_BYTE, BLOCK - 1), "block " + slot);
    }

    @Test
    void frontEndThatHangsUpUnderABusyQueueGetsEveryRequestDoneExactlyOnceAfterReconnecting() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("busy", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            for (int round = 0; round < 20; round++) {
                fe.connect(socket, fe.ring.usedIdx(), true);
                int count = PENDING;
                int[] heads = offerWrites(fe, count, round);
                // Hang up while the queue works on them: some are done, some in flight, some not taken yet.
                fe.hangUp();
                fe.connect(socket, fe.ring.usedIdx(), true);
                Set<Integer> done = new HashSet<>();
                for (int i = 0; i < count; i++) {
                    int head = fe.awaitUsed();
                    assertTrue(done.add(head), "round " + round + ": head " + head + " completed twice");
                }
                assertEquals(Set.copyOf(java.util.Arrays.stream(heads).boxed().toList()), done, "round " + round);
                for (int slot = 0; slot < count; slot++) {
                    assertEquals(VirtioBlk.S_OK, fe.statusOf(slot), "round " + round + " slot " + slot);
                }
                assertBlock(fe, 3, round);
                assertBlock(fe, count - 1, round);
                fe.hangUp();
            }
        }
    }

    @Test
    void getVringBaseWithRequestsInFlightCompletesThemFirst() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("stop", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            fe.connect(socket, 0, true);
            offerWrites(fe, PENDING, 7);
            int base = fe.fe.getVringBase(0);
            // Everything the back-end took is in the used ring by the time it answers.
            assertEquals(base, fe.ring.usedIdx());
            InflightRegion region = InflightRegion.of(fe.inflight, BlkTestFrontEnd.RING_SIZE);
            for (int h = 0; h < BlkTestFrontEnd.RING_SIZE; h++) {
                assertFalse(region.isInflight(h), "head " + h);
            }
            assertEquals(base, region.usedIdx());
            // Restarting from that base serves the rest.
            fe.fe.setVringBase(0, base);
            fe.fe.setVringKick(0, fe.kick.fd());
            Set<Integer> done = new HashSet<>();
            for (int i = 0; i < PENDING; i++) {
                assertTrue(done.add(fe.awaitUsed()), "a head completed twice");
            }
            assertBlock(fe, 0, 7);
            assertBlock(fe, PENDING - 1, 7);
        }
    }

    @Test
    void resetDeviceDropsTheInflightAreaSoAFreshRingStarts() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("reset", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            fe.connect(socket, 0, true);
            for (int i = 0; i < 5; i++) {
                assertBlockWrite(fe, i);
            }
            fe.fe.set(VhostUserRequest.RESET_DEVICE, new byte[0]);
            // The guest rebooted: zeroed rings, used index 0, while the old area says 10. Set up
            // without an inflight area: a back-end still holding the old one could not start the ring.
            fe.resetRing();
            fe.setUp(0, false);
            assertBlockWrite(fe, 9);
            assertEquals(2, fe.ring.usedIdx());
        }
    }

    private static void assertBlockWrite(BlkTestFrontEnd fe, int tag) {
        fe.dataOf(0, BLOCK).fill((byte) tag);
        assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_OUT, 0, BLOCK));
        assertBlock(fe, 0, tag);
    }

    @Test
    void memoryTableReplacedWhileStoppedIsUsedWhenTheRingRestarts() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("remap", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            fe.connect(socket, 0, true);
            assertBlockWrite(fe, 1);
            int base = fe.fe.getVringBase(0);
            // The front-end now has guest RAM mapped elsewhere (same memory, new user addresses).
            long moved = 0x1000_0000L;
            RegionSpec r = fe.ram.memory().regions().get(0);
            fe.fe.setMemTable(new MemoryTable(List.of(new RegionSpec(r.guestPhysAddr(), r.size(), r.userAddr() + moved,
                    r.mmapOffset()))), fe.ram.fd(0));
            fe.fe.setVringBase(0, base);
            fe.fe.setVringAddr(new VringAddress(0, 0, GuestRam.userAddr(fe.ring.descGpa()) + moved,
                    GuestRam.userAddr(fe.ring.usedGpa()) + moved, GuestRam.userAddr(fe.ring.availGpa()) + moved, 0));
            fe.fe.setVringKick(0, fe.kick.fd());
            assertBlockWrite(fe, 2);
            // The old addresses are gone: a ring there no longer starts.
            fe.fe.getVringBase(0);
            fe.fe.setVringAddr(new VringAddress(0, 0, GuestRam.userAddr(fe.ring.descGpa()),
                    GuestRam.userAddr(fe.ring.usedGpa()), GuestRam.userAddr(fe.ring.availGpa()), 0));
            VhostUserException e = org.junit.jupiter.api.Assertions.assertThrows(VhostUserException.class,
                    () -> fe.fe.setVringKick(0, fe.kick.fd()));
            assertTrue(e.getMessage().contains("failed"), e.getMessage());
        }
    }
}
