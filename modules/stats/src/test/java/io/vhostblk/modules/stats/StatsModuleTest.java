package io.vhostblk.modules.stats;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleSettings;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StatsModuleTest {
    private static final DeviceInfo DEVICE = new DeviceInfo("disk0", "vm0", "ram", 1 << 30, false, "ram:1G");
    private long now;

    private void io(BlockHook hook, BlockRequest r, BlockOp op, long length, long latency, long result) {
        r.set(op, 0, length, IoVector.NONE, false);
        assertEquals(HookAction.PASS, hook.beforeDriver(r));
        now += latency;
        assertEquals(result, hook.afterDriver(r, result));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> op(Map<String, Object> report, String op) {
        return (Map<String, Object>) report.get(op);
    }

    @Test
    void countsBytesAndPercentilesPerOperationMergedAcrossQueues() {
        StatsInstance stats = new StatsInstance(() -> now, 16);
        BlockHook q0 = stats.openQueue(null);
        BlockHook q1 = stats.openQueue(null);
        BlockRequest r0 = new BlockRequest(1, "disk0", 0);
        BlockRequest r1 = new BlockRequest(1, "disk0", 1);
        // 1000 reads: 990 at 10 µs and 10 at 5 ms, spread over two queues.
        for (int i = 0; i < 990; i++) {
            io(i % 2 == 0 ? q0 : q1, i % 2 == 0 ? r0 : r1, BlockOp.READ, 4096, 10_000, 4096);
        }
        for (int i = 0; i < 10; i++) {
            io(q1, r1, BlockOp.READ, 4096, 5_000_000, 4096);
        }
        io(q0, r0, BlockOp.WRITE, 65536, 50_000, 65536);
        io(q0, r0, BlockOp.WRITE, 512, 50_000, -5);
        io(q0, r0, BlockOp.FLUSH, 0, 2_000_000, 0);

        Map<String, Object> report = stats.report();
        Map<String, Object> read = op(report, "read");
        assertEquals(1000L, read.get("count"));
        assertEquals(1000L * 4096, read.get("bytes"));
        assertEquals(0L, read.get("errors"));
        long p50 = (long) read.get("p50-ns");
        assertTrue(p50 >= 10_000 && p50 <= 10_000 + 10_000 / 16, "p50 " + p50);
        long p99 = (long) read.get("p99-ns");
        assertTrue(p99 >= 10_000 && p99 <= 10_000 + 10_000 / 16, "p99 is the 990th of 1000: " + p99);
        long p999 = (long) read.get("p99.9-ns");
        assertTrue(p999 >= 5_000_000 && p999 <= 5_000_000 + 5_000_000 / 16, "p99.9 " + p999);
        assertEquals(5_000_000L, read.get("max-ns"));
        Map<String, Object> write = op(report, "write");
        assertEquals(2L, write.get("count"));
        assertEquals(65536L, write.get("bytes"), "a failed write's bytes are not counted");
        assertEquals(1L, write.get("errors"));
        assertEquals(1L, op(report, "flush").get("count"));
        assertEquals(0L, op(report, "discard").get("count"));
        assertEquals(0L, op(report, "write-zeroes").get("count"));
        assertEquals(2, report.get("queues"));
    }

    @Test
    void theGuestsOperationCountsEvenWhenAModuleBeneathRewroteTheRequest() {
        StatsInstance stats = new StatsInstance(() -> now, 16);
        BlockHook hook = stats.openQueue(null);
        BlockRequest r = new BlockRequest(9, "disk0", 0).set(BlockOp.WRITE, 0, 4096, IoVector.NONE, false);
        hook.beforeDriver(r);
        r.set(BlockOp.WRITE_ZEROES, 0, 4096, IoVector.NONE, true); // zero-detect beneath
        now += 1000;
        hook.afterDriver(r, 0);
        assertEquals(1L, op(stats.report(), "write").get("count"));
        assertEquals(0L, op(stats.report(), "write-zeroes").get("count"));
    }

    @Test
    void slotsOfModulesOwnRequestsAreTracked() {
        StatsInstance stats = new StatsInstance(() -> now, 16);
        BlockHook hook = stats.openQueue(null);
        io(hook, new BlockRequest(70_000, "disk0", 0), BlockOp.READ, 512, 300, 512);
        assertEquals(1L, op(stats.report(), "read").get("count"));
        assertEquals(300L, op(stats.report(), "read").get("max-ns"));
    }

    @Test
    void bucketsSettingIsChecked() throws Exception {
        assertEquals(32, new StatsModule().create(DEVICE, new ModuleSettings("stats", Map.of("buckets", "32"), Map.of()))
                .report().get("buckets-per-doubling"));
        ModuleException e = assertThrows(ModuleException.class, () -> new StatsModule().create(DEVICE,
                new ModuleSettings("stats", Map.of("buckets", "24"), Map.of("buckets", "p:3"))));
        assertEquals("p:3: module stats: setting buckets: 24 is not a power of two", e.getMessage());
        e = assertThrows(ModuleException.class, () -> new StatsModule().create(DEVICE,
                new ModuleSettings("stats", Map.of("bucket", "16"), Map.of("bucket", "p:4"))));
        assertEquals("p:4: module stats: setting bucket: unknown setting (stats knows: buckets)", e.getMessage());
    }
}
