package io.vhostblk.modules.zerodetect;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ZeroDetectTest {
    private static final DeviceInfo DEVICE = new DeviceInfo("disk0", "vm0", "ram", 1 << 30, false, "ram:1G");
    private final Arena arena = Arena.ofConfined();

    @AfterEach
    void close() {
        arena.close();
    }

    /** An iovec array over the given buffers. */
    private MemorySegment iov(MemorySegment... buffers) {
        MemorySegment iov = arena.allocate(16L * buffers.length, 8);
        for (int i = 0; i < buffers.length; i++) {
            iov.set(ValueLayout.JAVA_LONG, 16L * i, buffers[i].address());
            iov.set(ValueLayout.JAVA_LONG, 16L * i + 8, buffers[i].byteSize());
        }
        return iov;
    }

    private static ModuleInstance instance(Map<String, String> settings) throws ModuleException {
        return new ZeroDetectModule().create(DEVICE, new ModuleSettings("zero-detect", settings, Map.of()));
    }

    @Test
    void aWriteOfZerosBecomesWriteZeroesWithUnmapAndIsPutBackAfterwards() throws Exception {
        ModuleInstance m = instance(Map.of());
        BlockHook hook = m.openQueue(null);
        MemorySegment a = arena.allocate(4096, 8);
        MemorySegment b = arena.allocate(61440 + 512, 8);
        MemorySegment iov = iov(a, b);
        BlockRequest r = new BlockRequest(7, "disk0", 0).set(BlockOp.WRITE, 8192, 4096 + 61440 + 512, iov, 2, false);
        assertEquals(HookAction.PASS, hook.beforeDriver(r));
        assertEquals(BlockOp.WRITE_ZEROES, r.op());
        assertEquals(8192, r.offset());
        assertEquals(4096 + 61440 + 512, r.length());
        assertEquals(0, r.iovCount());
        assertTrue(r.unmap());
        assertEquals(0, hook.afterDriver(r, 0));
        assertEquals(BlockOp.WRITE, r.op(), "the hooks above see the WRITE they sent");
        assertEquals(2, r.iovCount());
        assertFalse(r.unmap());
        Map<String, Object> report = m.report();
        assertEquals(1L, report.get("writes-checked"));
        assertEquals(1L, report.get("zero-writes"));
        assertEquals((long) (4096 + 61440 + 512), report.get("bytes-saved"));
    }

    @Test
    void unmapFalseWritesZerosInPlace() throws Exception {
        BlockHook hook = instance(Map.of("unmap", "false")).openQueue(null);
        MemorySegment a = arena.allocate(512, 8);
        BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 0, 512, iov(a), 1, false);
        hook.beforeDriver(r);
        assertEquals(BlockOp.WRITE_ZEROES, r.op());
        assertFalse(r.unmap());
    }

    @Test
    void aWriteWithOneNonZeroByteAnywhereIsLeftAlone() throws Exception {
        ModuleInstance m = instance(Map.of());
        BlockHook hook = m.openQueue(null);
        long[] positions = {0, 1, 7, 8, 4095, 4096, 4097, 70000, 4096 + 131072 - 1};
        for (long pos : positions) {
            MemorySegment a = arena.allocate(4096, 8);
            MemorySegment b = arena.allocate(131072, 8); // more than the 64 KiB comparison chunk
            if (pos < 4096) {
                a.set(ValueLayout.JAVA_BYTE, pos, (byte) 1);
            } else {
                b.set(ValueLayout.JAVA_BYTE, pos - 4096, (byte) 0x80);
            }
            BlockRequest r = new BlockRequest(3, "disk0", 0).set(BlockOp.WRITE, 0, 4096 + 131072, iov(a, b), 2, false);
            assertEquals(HookAction.PASS, hook.beforeDriver(r));
            assertEquals(BlockOp.WRITE, r.op(), "non-zero byte at " + pos);
            assertEquals(2, r.iovCount());
            assertEquals(7, hook.afterDriver(r, 7));
            assertEquals(BlockOp.WRITE, r.op());
        }
        assertEquals(0L, m.report().get("zero-writes"));
        assertEquals((long) positions.length, m.report().get("writes-checked"));
    }

    @Test
    void onlyTheRequestsLengthIsLookedAt() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(null);
        MemorySegment a = arena.allocate(8192, 8);
        a.set(ValueLayout.JAVA_BYTE, 4096, (byte) 1); // beyond the 4096 bytes written
        BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 0, 4096, iov(a), 1, false);
        hook.beforeDriver(r);
        assertEquals(BlockOp.WRITE_ZEROES, r.op());
    }

    @Test
    void buffersShorterThanTheRequestAreNotConverted() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(null);
        MemorySegment a = arena.allocate(512, 8);
        BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 0, 1024, iov(a), 1, false);
        hook.beforeDriver(r);
        assertEquals(BlockOp.WRITE, r.op());
    }

    @Test
    void readsAndOtherOperationsPassUntouched() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(null);
        MemorySegment a = arena.allocate(512, 8);
        for (BlockOp op : new BlockOp[] {BlockOp.READ, BlockOp.FLUSH, BlockOp.DISCARD}) {
            BlockRequest r = new BlockRequest(0, "disk0", 0).set(op, 0, 512, iov(a), 1, false);
            assertEquals(HookAction.PASS, hook.beforeDriver(r));
            assertEquals(op, r.op());
        }
    }

    @Test
    void slotsBeyondTheQueueSizeWork() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(null);
        MemorySegment a = arena.allocate(512, 8);
        BlockRequest r = new BlockRequest(5000, "disk0", 0).set(BlockOp.WRITE, 0, 512, iov(a), 1, false);
        hook.beforeDriver(r);
        assertEquals(BlockOp.WRITE_ZEROES, r.op());
        hook.afterDriver(r, 0);
        assertEquals(BlockOp.WRITE, r.op());
    }

    @Test
    void badSettingsAreRefusedNamingTheirOrigin() {
        ModuleException e = assertThrows(ModuleException.class, () -> new ZeroDetectModule().create(DEVICE,
                new ModuleSettings("zero-detect", Map.of("unmap", "maybe"), Map.of("unmap", "web1.policy:12"))));
        assertEquals("web1.policy:12: module zero-detect: setting unmap: 'maybe' is not true or false", e.getMessage());
        e = assertThrows(ModuleException.class, () -> new ZeroDetectModule().create(DEVICE,
                new ModuleSettings("zero-detect", Map.of("unamp", "true"), Map.of("unamp", "web1.policy:13"))));
        assertEquals("web1.policy:13: module zero-detect: setting unamp: unknown setting (zero-detect knows: unmap)", e.getMessage());
    }
}
