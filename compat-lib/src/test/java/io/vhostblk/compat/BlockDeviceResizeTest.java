package io.vhostblk.compat;

import io.vhostblk.drivers.FileDriver;
import io.vhostblk.drivers.NullDriver;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link BlockDevice#resize}: driver first, then the guest's capacity, then the notice; and every refusal. */
class BlockDeviceResizeTest {
    private static final long MB = 1 << 20;

    @TempDir
    Path dir;

    /** A module that keeps a 64 KiB header and may or may not allow resizing. */
    private static ChainEntry headerModule(String name, boolean allowsResize) {
        return new ChainEntry(name, "1.0", new ModuleInstance() {
            @Override
            public BlockHook openQueue(HookContext context) {
                throw new UnsupportedOperationException("no I/O in this test");
            }

            @Override
            public long capacity(long capacityBelow) {
                return capacityBelow - 64 * 1024;
            }

            @Override
            public boolean allowsResize() {
                return allowsResize;
            }
        });
    }

    @Test
    void growingAFileImageGrowsTheFileTheGuestCapacityAndTellsTheGuest() throws Exception {
        Path img = dir.resolve("disk.img");
        try (FileDriver driver = FileDriver.open(img, 4 * MB, false)) {
            BlockDevice device = new BlockDevice("d1", "vm", driver, true);
            List<Long> seenByNotifier = new ArrayList<>();
            device.configNotifier(() -> {
                seenByNotifier.add(device.capacitySectors());
                return "told";
            });
            device.hooks(new HookChain(List.of(headerModule("hdr", true))));
            assertEquals((4 * MB - 64 * 1024) >> 9, device.capacitySectors());

            BlockDevice.Resized r = device.resize(8 * MB);
            assertEquals(8 * MB, Files.size(img));
            assertEquals(8 * MB, driver.capacity());
            assertEquals(4 * MB - 64 * 1024, r.bytesBefore());
            assertEquals(8 * MB - 64 * 1024, r.bytesAfter(), "the module's header is still kept");
            assertEquals("told", r.guest());
            assertEquals(List.of((8 * MB - 64 * 1024) >> 9), seenByNotifier, "notified after the capacity changed");
        }
    }

    @Test
    void shrinkingIsRefusedWhileAQueueRunsAndAllowedWhenIdle() throws Exception {
        Path img = dir.resolve("disk.img");
        try (FileDriver driver = FileDriver.open(img, 4 * MB, false)) {
            BlockDevice device = new BlockDevice("d1", "vm", driver, true);
            QueueStats q = new QueueStats(0);
            device.queueStarted(q);
            ResizeException e = assertThrows(ResizeException.class, () -> device.resize(2 * MB));
            assertTrue(e.getMessage().contains("vm=vm device=d1: shrinking from 4194304 to 2097152 bytes is refused"
                    + " while a guest uses the device (1 queues running)"), e.getMessage());
            assertEquals(4 * MB, Files.size(img), "nothing changed");
            assertEquals((4 * MB) >> 9, device.capacitySectors());
            device.queueStopped(q);
            BlockDevice.Resized r = device.resize(2 * MB);
            assertEquals(2 * MB, Files.size(img));
            assertEquals("no vhost-user device attached", r.guest());
        }
    }

    @Test
    void aModuleThatFixesTheSizeRefusesAndBadSizesAndDriversWithoutResizeAreTypedErrors() throws Exception {
        try (NullDriver nul = NullDriver.create(4 * MB, true); RamDriver ram = RamDriver.create(MB)) {
            BlockDevice device = new BlockDevice("d2", "vm", nul, true);
            device.hooks(new HookChain(List.of(headerModule("open", true), headerModule("fixed", false))));
            ResizeException refused = assertThrows(ResizeException.class, () -> device.resize(8 * MB));
            assertTrue(refused.getMessage().contains("module=fixed: the module does not allow"), refused.getMessage());
            assertEquals(4 * MB, nul.capacity());
            device.hooks(null);
            assertTrue(assertThrows(ResizeException.class, () -> device.resize(8 * MB + 100)).getMessage()
                    .contains("is not a positive multiple of 512"));
            assertEquals(8 * MB, device.resize(8 * MB).bytesAfter());
            assertEquals("capacity unchanged, guest not told", device.resize(8 * MB).guest());

            BlockDevice onRam = new BlockDevice("d3", "vm", ram, true);
            ResizeException cannot = assertThrows(ResizeException.class, () -> onRam.resize(2 * MB));
            assertTrue(cannot.getMessage().contains("ram driver (ram:1048576) cannot change its size"), cannot.getMessage());
            assertEquals(MB >> 9, onRam.capacitySectors());
        }
    }

    @Test
    void aReadOnlyImageCannotBeResized() throws Exception {
        Path img = dir.resolve("ro.img");
        FileDriver.open(img, MB, false).close();
        try (FileDriver driver = FileDriver.open(img, -1, true)) {
            BlockDevice device = new BlockDevice("ro", "vm", driver, true);
            ResizeException e = assertThrows(ResizeException.class, () -> device.resize(2 * MB));
            assertTrue(e.getMessage().contains("is served read-only"), e.getMessage());
            assertEquals(MB, Files.size(img));
        }
    }

    /** Storage that another client resizes: reports {@code size} and calls the listener it was given. */
    private static final class SharedImage implements io.vhostblk.drivers.BlockDriver {
        volatile long size;
        io.vhostblk.drivers.CapacityListener listener;

        SharedImage(long size) {
            this.size = size;
        }

        void resizedElsewhere(long bytes) {
            size = bytes;
            listener.capacityChanged(bytes);
        }

        @Override
        public void capacityListener(io.vhostblk.drivers.CapacityListener listener) {
            this.listener = listener;
        }

        @Override
        public String kind() {
            return "shared";
        }

        @Override
        public String target() {
            return "shared-image";
        }

        @Override
        public long capacity() {
            return size;
        }

        @Override
        public boolean readOnly() {
            return false;
        }

        @Override
        public boolean supportsDiscard() {
            return false;
        }

        @Override
        public boolean supportsWriteZeroes() {
            return false;
        }

        @Override
        public io.vhostblk.drivers.DriverQueue openQueue(int queueIndex, io.vhostblk.drivers.DriverCompletion completion) {
            throw new UnsupportedOperationException("no I/O in this test");
        }

        @Override
        public void sync() {
        }

        @Override
        public void close() {
        }
    }

    @Test
    void storageResizedOutsideIsShownToTheGuestUnlessAModuleFixesTheSize() {
        SharedImage image = new SharedImage(4 * MB);
        BlockDevice device = new BlockDevice("rbd1", "vm", image, true);
        List<Long> told = new ArrayList<>();
        device.configNotifier(() -> {
            told.add(device.capacitySectors());
            return "told";
        });
        image.resizedElsewhere(8 * MB);
        assertEquals((8 * MB) >> 9, device.capacitySectors());
        assertEquals(List.of((8 * MB) >> 9), told);
        image.resizedElsewhere(8 * MB);
        assertEquals(1, told.size(), "no change, no notice");

        device.hooks(new HookChain(List.of(headerModule("fixed", false))));
        long shown = device.capacitySectors();
        image.resizedElsewhere(16 * MB);
        assertEquals(shown, device.capacitySectors(), "a module that fixes the size keeps the guest's size");
        assertEquals(1, told.size());
    }
}
