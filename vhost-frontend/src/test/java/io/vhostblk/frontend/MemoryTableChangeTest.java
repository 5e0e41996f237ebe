package io.vhostblk.frontend;

import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.GuestMemory.RegionSpec;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Memory table changes under a running virtio-blk queue with requests in flight: a repeated
 * SET_MEM_TABLE and memory hotplug (ADD_MEM_REG / REM_MEM_REG), with real I/O through a RAM disk.
 */
class MemoryTableChangeTest {
    private static final int BLOCK = 4096;
    private static final int SECTORS = BLOCK / VirtioBlk.SECTOR_SIZE;
    private static final int PENDING = BlkTestFrontEnd.RING_SIZE / 3;
    private static final long MEM_SLOTS = VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_CONFIGURE_MEM_SLOTS);

    @TempDir
    Path dir;

    @Test
    void aSecondSetMemTableWhileRequestsAreInFlightCompletesEveryOneExactlyOnce() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("remap", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            fe.connect(socket, 0);
            MemoryTable table = new MemoryTable(List.of(fe.ram.memory().regions().getFirst()));
            for (int round = 0; round < 20; round++) {
                Set<Integer> offered = new HashSet<>();
                for (int slot = 0; slot < PENDING; slot++) {
                    fe.dataOf(slot, BLOCK).fill((byte) (round + slot));
                    offered.add(fe.offer(slot, VirtioBlk.T_OUT, (long) slot * SECTORS, BLOCK));
                }
                fe.publishAndKick();
                // The same RAM again (a fresh mapping of it), as a front-end does after a memory
                // layout change without CONFIGURE_MEM_SLOTS: the queue parks, swaps, resumes.
                fe.fe.setMemTable(table, fe.ram.fd(0));
                Set<Integer> done = new HashSet<>();
                for (int i = 0; i < PENDING; i++) {
                    int head = fe.awaitUsed();
                    assertTrue(done.add(head), "round " + round + ": head " + head + " completed twice");
                }
                assertEquals(offered, done, "round " + round);
                for (int slot = 0; slot < PENDING; slot++) {
                    assertEquals(VirtioBlk.S_OK, fe.statusOf(slot), "round " + round + " slot " + slot);
                }
                fe.dataOf(0, BLOCK).fill((byte) 0);
                assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, (long) (PENDING - 1) * SECTORS, BLOCK));
                assertEquals((byte) (round + PENDING - 1), fe.dataOf(0, BLOCK).get(ValueLayout.JAVA_BYTE, BLOCK - 1));
            }
        }
    }

    @Test
    void aHotpluggedRegionServesIoAndAnUnpluggedOneIsOutsideMemory() throws Exception {
        Path socket = dir.resolve("blk.sock");
        long dimmGpa = 1L << 32;
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("dimm", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK);
             GuestRam dimm = GuestRam.memfd(0, new GuestRam.Region(dimmGpa, 1 << 20))) {
            fe.protocol |= MEM_SLOTS;
            fe.connect(socket, 0);
            fe.dataOf(0, BLOCK).fill((byte) 0x3c);
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_OUT, 8, BLOCK));

            RegionSpec region = dimm.memory().regions().getFirst();
            fe.fe.set(VhostUserRequest.ADD_MEM_REG, MemoryTable.encodeSingle(region), dimm.fd(0));
            // A read whose data buffer lies in the hotplugged memory.
            long buffer = dimm.alloc(BLOCK, 4096);
            assertEquals(VirtioBlk.S_OK, readInto(fe, buffer, 8));
            MemorySegment landed = dimm.at(buffer, BLOCK);
            assertEquals((byte) 0x3c, landed.get(ValueLayout.JAVA_BYTE, 0));
            assertEquals((byte) 0x3c, landed.get(ValueLayout.JAVA_BYTE, BLOCK - 1));

            fe.fe.set(VhostUserRequest.REM_MEM_REG, MemoryTable.encodeSingle(region));
            landed.fill((byte) 0);
            // The guest now points outside its memory: the request fails, nothing is written there.
            assertEquals(VirtioBlk.S_IOERR, readInto(fe, buffer, 8));
            assertEquals((byte) 0, landed.get(ValueLayout.JAVA_BYTE, 0));
            // And the queue still serves requests in the memory that remains.
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, 8, BLOCK));
        }
    }

    /** A read of one block at {@code sector} into guest buffer {@code gpa} (header and status in slot 0). */
    private static byte readInto(BlkTestFrontEnd fe, long gpa, long sector) {
        int head = fe.offer(0, VirtioBlk.T_IN, sector, BLOCK, gpa);
        fe.publishAndKick();
        assertEquals(head, fe.awaitUsed());
        return fe.statusOf(0);
    }
}
