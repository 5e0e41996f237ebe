package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FaultyDriverTest {
    private static final int BLOCK = 4096;
    private final Arena arena = Arena.ofAuto();
    private final List<Long> results = new ArrayList<>();
    private final List<Integer> completedSlots = new ArrayList<>();
    private final MemorySegment buf = arena.allocate(BLOCK, BLOCK);
    private final MemorySegment pollFd = arena.allocate(Libc.POLLFD);

    @TempDir
    Path dir;

    private DriverQueue open(BlockDriver d) throws DriverException {
        return d.openQueue(0, (r, res) -> {
            completedSlots.add(r.slot());
            results.add(res);
        });
    }

    private BlockRequest req(int slot, BlockOp op, long offset) {
        return new BlockRequest(slot, "dev", 0).set(op, offset, op == BlockOp.FLUSH ? 0 : BLOCK, TestIo.iov(arena, buf), false);
    }

    /** Submits, waits for the queue to finish, returns the result. */
    private long run(DriverQueue q, BlockRequest r) {
        results.clear();
        q.submit(r);
        q.flushBatch();
        TestIo.drain(q, pollFd);
        assertEquals(1, results.size());
        return results.get(0);
    }

    private long write(DriverQueue q, long offset, int fill) {
        buf.fill((byte) fill);
        return run(q, req(0, BlockOp.WRITE, offset));
    }

    @Test
    void eioOnARangeFailsExactlyTheRequestsThatTouchIt() throws Exception {
        try (FaultyDriver d = FaultyDriver.wrap(RamDriver.create(1 << 20), FaultSpec.parse("eio=8192-12288"), "t");
             DriverQueue q = open(d)) {
            assertEquals(BLOCK, write(q, 4096, 1));
            assertEquals(-Errno.EIO, write(q, 8192, 2));
            assertEquals(-Errno.EIO, run(q, req(0, BlockOp.READ, 8192)));
            assertEquals(-Errno.EIO, run(q, new BlockRequest(0, "dev", 0).set(BlockOp.READ, 12287, 1, TestIo.iov(arena, buf.asSlice(0, 1)), false)));
            assertEquals(BLOCK, run(q, req(0, BlockOp.READ, 12288)));
            assertEquals(0, run(q, req(0, BlockOp.FLUSH, 0)), "a flush touches no range");
            assertEquals(3, d.counters().eio());
            assertEquals(0, d.counters().enospc());
        }
    }

    @Test
    void eioOnTheNthRequestOnly() throws Exception {
        try (FaultyDriver d = FaultyDriver.wrap(RamDriver.create(1 << 20), FaultSpec.parse("eio-nth=3"), "t");
             DriverQueue q = open(d)) {
            long[] got = new long[5];
            for (int i = 0; i < 5; i++) {
                got[i] = run(q, req(0, BlockOp.READ, 0));
            }
            assertArrayEquals(new long[] {BLOCK, BLOCK, -Errno.EIO, BLOCK, BLOCK}, got);
            assertEquals(1, d.counters().eio());
        }
    }

    @Test
    void enospcAfterTheByteLimitIsCountedApartFromEio() throws Exception {
        try (FaultyDriver d = FaultyDriver.wrap(RamDriver.create(1 << 20), FaultSpec.parse("enospc-after=8K"), "t");
             DriverQueue q = open(d)) {
            assertEquals(BLOCK, write(q, 0, 1));
            assertEquals(BLOCK, write(q, 4096, 1));
            assertEquals(-Errno.ENOSPC, write(q, 8192, 1));
            assertEquals(-Errno.ENOSPC, write(q, 0, 1), "the disk stays full");
            assertEquals(BLOCK, run(q, req(0, BlockOp.READ, 0)), "reads still work");
            assertEquals(2, d.counters().enospc());
            assertEquals(0, d.counters().eio());
        }
    }

    @Test
    void everyNthTransferIsShort() throws Exception {
        try (FaultyDriver d = FaultyDriver.wrap(RamDriver.create(1 << 20), FaultSpec.parse("short=2"), "t");
             DriverQueue q = open(d)) {
            assertEquals(BLOCK, run(q, req(0, BlockOp.READ, 0)));
            assertEquals(BLOCK / 2, run(q, req(0, BlockOp.WRITE, 0)));
            assertEquals(0, run(q, req(0, BlockOp.FLUSH, 0)), "flushes are not transfers");
            assertEquals(BLOCK, run(q, req(0, BlockOp.READ, 0)));
            assertEquals(BLOCK / 2, run(q, req(0, BlockOp.READ, 0)));
            assertEquals(2, d.counters().shortTransfers());
        }
    }

    @Test
    void latencyCompletesLaterThroughTheCompletionFdInOrder() throws Exception {
        try (FaultyDriver d = FaultyDriver.wrap(RamDriver.create(1 << 20), FaultSpec.parse("latency=2ms,eio=0-4096"), "t");
             DriverQueue q = open(d)) {
            assertTrue(q.completionFd() >= 0, "the loop needs an fd to wait on");
            for (int slot = 0; slot < 3; slot++) {
                q.submit(req(slot, BlockOp.READ, slot * (long) BLOCK));
            }
            q.flushBatch();
            assertEquals(List.of(), results, "nothing completes inside submit: it waits for its timer");
            assertEquals(3, q.inFlight());
            TestIo.drain(q, pollFd);
            assertEquals(List.of(0, 1, 2), completedSlots);
            assertEquals(List.of((long) -Errno.EIO, (long) BLOCK, (long) BLOCK), results, "injected errors are delayed too");
            assertEquals(3, d.counters().delayed());
        }
    }

    @Test
    void latencyOverIoUringWaitsForBothTheDiskAndTheTimers() throws Exception {
        Path img = dir.resolve("lat.img");
        try (FaultyDriver d = FaultyDriver.wrap(IoUringDriver.open(img, 1 << 20, false, DriverOptions.DEFAULTS),
                FaultSpec.parse("latency=1ms"), "t");
             DriverQueue q = open(d)) {
            buf.fill((byte) 7);
            for (int round = 0; round < 50; round++) {
                results.clear();
                q.submit(req(round % 4, BlockOp.WRITE, (round % 16) * (long) BLOCK));
                q.flushBatch();
                TestIo.drain(q, pollFd);
                assertEquals(List.of((long) BLOCK), results);
            }
        }
        byte[] image = Files.readAllBytes(img);
        byte[] expected = new byte[16 * BLOCK];
        Arrays.fill(expected, (byte) 7);
        assertArrayEquals(expected, Arrays.copyOf(image, 16 * BLOCK));
    }

    @Test
    void powerCutKeepsFlushedWritesAndLosesTheRest() throws Exception {
        Path img = dir.resolve("cut.img");
        try (FaultyDriver d = FaultyDriver.wrap(FileDriver.open(img, 1 << 20, false), FaultSpec.parse("power-cut"), "t");
             DriverQueue q = open(d)) {
            assertEquals(BLOCK, write(q, 0, 1));
            assertEquals(BLOCK, write(q, 4096, 1));
            assertEquals(0, run(q, req(0, BlockOp.FLUSH, 0)));
            assertEquals(BLOCK, write(q, 0, 2));      // overwrites a flushed block, never flushed
            assertEquals(BLOCK, write(q, 8192, 2));   // a new block, never flushed
            assertEquals(BLOCK, write(q, 0, 3));      // and again
            buf.fill((byte) 0);
            assertEquals(BLOCK, run(q, req(0, BlockOp.READ, 0)));
            assertEquals(3, buf.get(ValueLayout.JAVA_BYTE, 100), "before the cut the device reads its latest data");
        }
        byte[] image = Files.readAllBytes(img);
        assertBlock(image, 0, 1);
        assertBlock(image, 1, 1);
        assertBlock(image, 2, 0);
    }

    @Test
    void powerCutAfterNWritesRefusesEverythingAfterIt() throws Exception {
        Path img = dir.resolve("cutn.img");
        FaultyDriver d = FaultyDriver.wrap(FileDriver.open(img, 1 << 20, false), FaultSpec.parse("power-cut=2"), "t");
        try (DriverQueue q = open(d)) {
            assertEquals(BLOCK, write(q, 0, 1));
            assertEquals(0, run(q, req(0, BlockOp.FLUSH, 0)));
            assertEquals(BLOCK, write(q, 4096, 1));
            assertEquals(-Errno.EIO, write(q, 8192, 1), "the third write meets the cut");
            assertEquals(-Errno.EIO, run(q, req(0, BlockOp.READ, 0)));
            assertEquals(-Errno.EIO, run(q, req(0, BlockOp.FLUSH, 0)));
            assertEquals(3, d.counters().failedAfterPowerCut());
        }
        d.close();
        assertEquals(1, d.counters().droppedAtPowerCut());
        byte[] image = Files.readAllBytes(img);
        assertBlock(image, 0, 1);
        assertBlock(image, 1, 0);
        assertBlock(image, 2, 0);
    }

    @Test
    void reorderedPowerCutLeavesEachUnflushedBlockOldOrNew() throws Exception {
        int blocks = 64;
        int kept = 0;
        for (long seed = 0; seed < 4; seed++) {
            Path img = dir.resolve("reorder" + seed + ".img");
            FaultyDriver d = FaultyDriver.wrap(FileDriver.open(img, 1 << 20, false), FaultSpec.parse("power-cut,reorder=" + seed), "t");
            try (DriverQueue q = open(d)) {
                for (int b = 0; b < blocks; b++) {
                    write(q, (long) b * BLOCK, 1);
                }
                run(q, req(0, BlockOp.FLUSH, 0));
                for (int b = 0; b < blocks; b++) {
                    write(q, (long) b * BLOCK, 2);
                }
            }
            d.close();
            byte[] image = Files.readAllBytes(img);
            for (int b = 0; b < blocks; b++) {
                int first = image[b * BLOCK];
                assertTrue(first == 1 || first == 2, "block " + b + " holds " + first);
                assertBlock(image, b, first);
            }
            kept += (int) d.counters().keptAtPowerCut();
            assertEquals(blocks, d.counters().keptAtPowerCut() + d.counters().droppedAtPowerCut());
        }
        assertTrue(kept > 0 && kept < 4 * blocks, "some unflushed writes survive and some do not: " + kept);
    }

    private static void assertBlock(byte[] image, int block, int fill) {
        byte[] expected = new byte[BLOCK];
        Arrays.fill(expected, (byte) fill);
        assertArrayEquals(expected, Arrays.copyOfRange(image, block * BLOCK, (block + 1) * BLOCK), "block " + block);
    }
}
