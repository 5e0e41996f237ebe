package io.vhostblk.compat;

import io.vhostblk.compat.example.XorModule;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleSettings;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The example module of docs/modules.md, run by real guest requests through the compat-lib to a RAM disk. */
class XorExampleModuleTest {
    private static final int BLOCK = 4096;
    private RamDriver disk;
    private GuestRequests withModule;
    private GuestRequests raw;

    @BeforeEach
    void setUp() throws Exception {
        disk = RamDriver.create(1 << 20);
        withModule = new GuestRequests(4 << 20, 64);
        raw = new GuestRequests(4 << 20, 64);
    }

    @AfterEach
    void tearDown() throws Exception {
        withModule.close();
        raw.close();
        disk.close();
    }

    private static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 7 + 3);
        }
        return b;
    }

    @Test
    void storesTransformedBytesAndReadsThemBackLeavingTheGuestsWriteBufferAlone() throws Exception {
        BlockDevice device = new BlockDevice("disk0", "vm1", disk, true);
        withModule.open(device);
        DeviceInfo info = device.info();
        device.hooks(new HookChain(List.of(new ChainEntry("xor", "1.0",
                new XorModule().create(info, new ModuleSettings("xor", Map.of("key", "255"), Map.of()))))));
        raw.open(new BlockDevice("disk0-raw", "vm1", disk, true));

        byte[] data = pattern(2 * BLOCK);
        long src = withModule.buffer(data.length, 0);
        withModule.put(src, data);
        assertEquals(VirtioBlk.S_OK, withModule.run(VirtioBlk.T_OUT, 16, src, data.length, false).status());
        assertArrayEquals(data, withModule.bytes(src, data.length), "the guest's write buffer is untouched");

        long stored = raw.buffer(data.length, 0);
        assertEquals(VirtioBlk.S_OK, raw.run(VirtioBlk.T_IN, 16, stored, data.length, true).status());
        byte[] onDisk = raw.bytes(stored, data.length);
        for (int i = 0; i < data.length; i++) {
            assertEquals((byte) ~data[i], onDisk[i], "byte " + i + " on disk");
        }

        long back = withModule.buffer(data.length, 0x11);
        assertEquals(VirtioBlk.S_OK, withModule.run(VirtioBlk.T_IN, 16, back, data.length, true).status());
        assertArrayEquals(data, withModule.bytes(back, data.length));
        assertEquals(0, withModule.context.inFlight());
    }

    @Test
    void aKeyOutsideItsRangeIsRefusedNamingWhereItWasSet() {
        ModuleException e = assertThrows(ModuleException.class, () -> new XorModule().create(
                new DeviceInfo("d", "vm", "ram", 1 << 20, false, "ram:1M"),
                new ModuleSettings("xor", Map.of("key", "256"), Map.of("key", "vm1.policy:4"))));
        assertEquals("vm1.policy:4: module xor: setting key: 256 is outside 1..255", e.getMessage());
    }
}
