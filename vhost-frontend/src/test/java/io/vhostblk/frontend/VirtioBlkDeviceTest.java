package io.vhostblk.frontend;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.virtio.BlkConfig;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The config space and features the guest gets, derived from the device and its modules. */
class VirtioBlkDeviceTest {

    /** A module that keeps a 1 MiB header and works in 4096-byte units, as a LUKS2 volume with 4 KiB sectors. */
    private record FourKiBModule() implements ModuleInstance {
        @Override
        public BlockHook openQueue(HookContext context) {
            return r -> HookAction.PASS;
        }

        @Override
        public int logicalBlockSize() {
            return 4096;
        }

        @Override
        public long capacity(long below) {
            return below - (1 << 20);
        }
    }

    @Test
    void plainDeviceAdvertises512ByteBlocksOn4KiBPhysicalOnes() throws Exception {
        try (RamDriver ram = RamDriver.create(64 << 20)) {
            VirtioBlkDevice dev = new VirtioBlkDevice(new BlockDevice("d", "vm", ram, true), 2, 256, QueueTuning.DEFAULTS);
            BlkConfig c = BlkConfig.fromBytes(dev.config());
            assertEquals((64 << 20) / 512, c.capacity());
            assertEquals(512, c.blkSize());
            assertEquals(3, c.physicalBlockExp(), "4096 = 512 << 3");
            assertEquals(8, c.minIoSize());
            assertEquals(2, c.numQueues());
            assertEquals(VirtioBlkDevice.SEG_MAX, c.segMax());
            assertTrue((dev.features() & (1L << VirtioBlk.F_DISCARD)) != 0);
            assertTrue((dev.features() & (1L << VirtioBlk.F_RO)) == 0);
        }
    }

    @Test
    void aQueueLargerThanTheConfiguredLimitIsRefused() throws Exception {
        try (RamDriver ram = RamDriver.create(1 << 20);
             io.vhostblk.virtio.GuestRam guest = io.vhostblk.virtio.GuestRam.anonymous(
                     new io.vhostblk.virtio.GuestRam.Region(0, 1 << 20))) {
            VirtioBlkDevice dev = new VirtioBlkDevice(new BlockDevice("d", "vm", ram, true), 1, 64, QueueTuning.DEFAULTS);
            var queue = new io.vhostblk.virtio.SplitRingDriver(guest, 128).deviceQueue(true, true);
            VhostUserException e = assertThrows(VhostUserException.class, () -> dev.startQueue(0, queue, null, null));
            assertTrue(e.getMessage().contains("128 entries") && e.getMessage().contains("--queue-size 64"), e.getMessage());
        }
    }

    @Test
    void aModuleWith4KiBSectorsMakesTheGuestUse4KiBBlocksAndSeeItsPayloadOnly() throws Exception {
        try (RamDriver ram = RamDriver.create(64 << 20)) {
            BlockDevice device = new BlockDevice("d", "vm", ram, true);
            device.hooks(new HookChain(List.of(new ChainEntry("luks2-4k", "1", new FourKiBModule()))));
            VirtioBlkDevice dev = new VirtioBlkDevice(device, 1, 256, QueueTuning.DEFAULTS);
            BlkConfig c = BlkConfig.fromBytes(dev.config());
            assertEquals(4096, c.blkSize());
            assertEquals(0, c.physicalBlockExp());
            assertEquals(1, c.minIoSize());
            assertEquals((63L << 20) / 512, c.capacity());
            // The guest has read the config: taking the module away would change its geometry.
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> device.hooks(HookChain.empty()));
            assertTrue(e.getMessage().contains("size"), e.getMessage());
        }
    }
}
