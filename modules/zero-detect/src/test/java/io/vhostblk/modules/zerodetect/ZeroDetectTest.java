package io.vhostblk.modules.zerodetect;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;
import io.vhostblk.testsupport.RecordingHookContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
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

    private final RecordingHookContext context = new RecordingHookContext(DEVICE);

    /** A guest write's data over the given buffers (device-readable). */
    private IoVector iov(MemorySegment... buffers) {
        IoVector v = new IoVector(buffers.length, arena).clear(false);
        for (MemorySegment b : buffers) {
            v.add(b, 0, b.byteSize());
        }
        return v;
    }

    /** The one request the hook sent below, answered with {@code result}. */
    private BlockRequest onlyChild(BlockRequest parent, long result) {
        assertEquals(1, context.below.size(), "requests sent below");
        BlockRequest child = context.below.getFirst();
        assertEquals(parent, child.parent());
        context.answer(child, result);
        return child;
    }

    private static ModuleInstance instance(Map<String, String> settings) throws ModuleException {
        return new ZeroDetectModule().create(DEVICE, new ModuleSettings("zero-detect", settings, Map.of()));
    }

    @Test
    void aWriteOfZerosBecomesWriteZeroesWithUnmapAndIsPutBackAfterwards() throws Exception {
        ModuleInstance m = instance(Map.of());
        BlockHook hook = m.openQueue(context);
        MemorySegment a = arena.allocate(4096, 8);
        MemorySegment b = arena.allocate(61440 + 512, 8);
        IoVector iov = iov(a, b);
        BlockRequest r = new BlockRequest(7, "disk0", 0).set(BlockOp.WRITE, 8192, 4096 + 61440 + 512, iov, false);
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(r));
        BlockRequest child = onlyChild(r, 0);
        assertEquals(BlockOp.WRITE_ZEROES, child.op());
        assertEquals(8192, child.offset());
        assertEquals(4096 + 61440 + 512, child.length());
        assertEquals(0, child.data().segmentCount());
        assertTrue(child.unmap());
        assertEquals(List.of(new RecordingHookContext.Completion(r, 0)), context.completed, "the guest's WRITE gets the result");
        assertEquals(BlockOp.WRITE, r.op(), "the hooks above see the WRITE they sent");
        assertEquals(2, r.data().segmentCount());
        assertFalse(r.unmap());
        Map<String, Object> report = m.report();
        assertEquals(1L, report.get("writes-checked"));
        assertEquals(1L, report.get("zero-writes"));
        assertEquals((long) (4096 + 61440 + 512), report.get("bytes-saved"));
    }

    @Test
    void unmapFalseWritesZerosInPlace() throws Exception {
        BlockHook hook = instance(Map.of("unmap", "false")).openQueue(context);
        MemorySegment a = arena.allocate(512, 8);
        BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 0, 512, iov(a), false);
        hook.beforeDriver(r);
        BlockRequest child = onlyChild(r, 0);
        assertEquals(BlockOp.WRITE_ZEROES, child.op());
        assertFalse(child.unmap());
    }

    @Test
    void aWriteWithOneNonZeroByteAnywhereIsLeftAlone() throws Exception {
        ModuleInstance m = instance(Map.of());
        BlockHook hook = m.openQueue(context);
        long[] positions = {0, 1, 7, 8, 4095, 4096, 4097, 70000, 4096 + 131072 - 1};
        for (long pos : positions) {
            MemorySegment a = arena.allocate(4096, 8);
            MemorySegment b = arena.allocate(131072, 8); // more than the 64 KiB comparison chunk
            if (pos < 4096) {
                a.set(ValueLayout.JAVA_BYTE, pos, (byte) 1);
            } else {
                b.set(ValueLayout.JAVA_BYTE, pos - 4096, (byte) 0x80);
            }
            BlockRequest r = new BlockRequest(3, "disk0", 0).set(BlockOp.WRITE, 0, 4096 + 131072, iov(a, b), false);
            assertEquals(HookAction.PASS, hook.beforeDriver(r), "non-zero byte at " + pos);
            assertEquals(BlockOp.WRITE, r.op(), "non-zero byte at " + pos);
            assertEquals(2, r.data().segmentCount());
            assertEquals(List.of(), context.below);
            assertEquals(7, hook.afterDriver(r, 7));
            assertEquals(BlockOp.WRITE, r.op());
        }
        assertEquals(0L, m.report().get("zero-writes"));
        assertEquals((long) positions.length, m.report().get("writes-checked"));
    }

    @Test
    void onlyTheRequestsLengthIsLookedAt() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(context);
        MemorySegment a = arena.allocate(8192, 8);
        a.set(ValueLayout.JAVA_BYTE, 4096, (byte) 1); // beyond the 4096 bytes written
        BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 0, 4096, iov(a), false);
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(r));
        assertEquals(BlockOp.WRITE_ZEROES, onlyChild(r, 0).op());
    }

    @Test
    void buffersShorterThanTheRequestAreNotConverted() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(context);
        MemorySegment a = arena.allocate(512, 8);
        BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 0, 1024, iov(a), false);
        assertEquals(HookAction.PASS, hook.beforeDriver(r));
        assertEquals(BlockOp.WRITE, r.op());
        assertEquals(List.of(), context.below);
    }

    @Test
    void readsAndOtherOperationsPassUntouched() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(context);
        MemorySegment a = arena.allocate(512, 8);
        for (BlockOp op : new BlockOp[] {BlockOp.READ, BlockOp.FLUSH, BlockOp.DISCARD}) {
            BlockRequest r = new BlockRequest(0, "disk0", 0).set(op, 0, 512, iov(a), false);
            assertEquals(HookAction.PASS, hook.beforeDriver(r));
            assertEquals(op, r.op());
        }
        assertEquals(List.of(), context.below);
    }

    @Test
    void slotsBeyondTheQueueSizeWork() throws Exception {
        BlockHook hook = instance(Map.of()).openQueue(context);
        MemorySegment a = arena.allocate(512, 8);
        BlockRequest r = new BlockRequest(5000, "disk0", 0).set(BlockOp.WRITE, 0, 512, iov(a), false);
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(r));
        assertEquals(BlockOp.WRITE_ZEROES, onlyChild(r, -5).op());
        assertEquals(List.of(new RecordingHookContext.Completion(r, -5)), context.completed, "an error comes back to the guest's request");
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
