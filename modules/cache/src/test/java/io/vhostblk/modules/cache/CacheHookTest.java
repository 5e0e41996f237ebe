package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.testsupport.RecordingHookContext;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The module's hooks on two queues: the second hands its requests to the first, whose loop serves the cache. */
class CacheHookTest {

    private static final DeviceInfo DEVICE = new DeviceInfo("d0", "vm1", "file", 1 << 20, false, "/img");

    private static CacheDevice device(CacheEngine.Mode mode, SimDisk cacheDisk) {
        CacheHeader h = new CacheHeader(4096, 64, 1 << 20, UUID.randomUUID(), "/img");
        CacheEngine engine = new CacheEngine(h, null, mode, 1 << 20, "test");
        return new CacheDevice("test", engine, ioOn(cacheDisk), "mem", false, null);
    }

    /** The cache device as {@code disk}, whatever loop owns it. */
    static CacheDeviceIo ioOn(Store disk) {
        return new CacheDeviceIo() {
            @Override
            public Store open(HookContext owner) {
                return disk;
            }

            @Override
            public void close(HookContext owner) {
            }
        };
    }

    private static BlockRequest request(int slot, BlockOp op, long offset, MemorySegment buf, boolean deviceWritable) {
        BlockRequest r = new BlockRequest(slot, "d0", 1);
        IoVector data = buf == null ? IoVector.NONE : new IoVector(1).wrap(buf, 0, buf.byteSize(), deviceWritable);
        return r.set(op, offset, buf == null ? 0 : buf.byteSize(), data, false);
    }

    @Test
    void aSecondQueueHandsItsRequestsToTheOwnerLoop() {
        SimDisk cacheDisk = new SimDisk(1 << 20, new SimDisk.Power(Long.MAX_VALUE), null);
        MemorySegment below = Arena.ofAuto().allocate(1 << 20);
        CacheDevice dev = device(CacheEngine.Mode.WRITE_THROUGH, cacheDisk);
        RecordingHookContext q0 = new RecordingHookContext(DEVICE);
        RecordingHookContext q1 = new RecordingHookContext(DEVICE);
        BlockHook h0 = dev.openQueue(q0);
        BlockHook h1 = dev.openQueue(onQueue(1, q1));
        assertTrue(dev.owner() == h0);

        MemorySegment data = Arena.ofAuto().allocate(8192).fill((byte) 3);
        BlockRequest w = request(1, BlockOp.WRITE, 8192, data, false);
        assertEquals(HookAction.TAKE_OVER, h1.beforeDriver(w));
        assertEquals(0, q0.waitingBelow(), "nothing happens before the owner loop runs the hand-over");
        q0.settle(r -> layer(below, r));
        assertEquals(3, below.get(ValueLayout.JAVA_BYTE, 8192 + 8191), "write-through reached the layers below via queue 0");
        q1.runTasks();
        assertEquals(8192, q1.resultOf(w), "the result comes back on queue 1");

        MemorySegment into = Arena.ofAuto().allocate(8192);
        BlockRequest r = request(2, BlockOp.READ, 8192, into, true);
        int sentBelow = q0.below.size();
        assertEquals(HookAction.TAKE_OVER, h1.beforeDriver(r));
        q0.settle(x -> layer(below, x));
        q1.runTasks();
        assertEquals(8192, q1.resultOf(r));
        assertEquals(sentBelow, q0.below.size(), "a hit never goes below");
        assertEquals(3, into.get(ValueLayout.JAVA_BYTE, 4096));

        BlockRequest flush = request(3, BlockOp.FLUSH, 0, null, false);
        assertEquals(HookAction.PASS, h1.beforeDriver(flush), "write-through: a FLUSH is the layers' below");
        assertEquals(2L, dev.report().get("hits"));
        assertEquals(2L, dev.report().get("requests_handed_over"));
    }

    @Test
    void aReconnectedFrontEndGetsANewOwnerQueue() {
        SimDisk cacheDisk = new SimDisk(1 << 20, new SimDisk.Power(Long.MAX_VALUE), null);
        MemorySegment below = Arena.ofAuto().allocate(1 << 20);
        CacheDevice dev = device(CacheEngine.Mode.WRITE_THROUGH, cacheDisk);
        RecordingHookContext old0 = new RecordingHookContext(DEVICE);
        dev.openQueue(old0);
        // The front-end reconnects: the old loops stopped, new ones open their hooks again.
        RecordingHookContext new0 = new RecordingHookContext(DEVICE);
        BlockHook h = dev.openQueue(new0);
        assertTrue(dev.owner() == h, "the reconnected queue owns the cache");
        MemorySegment into = Arena.ofAuto().allocate(4096);
        BlockRequest r = request(1, BlockOp.READ, 0, into, true);
        assertEquals(HookAction.TAKE_OVER, h.beforeDriver(r));
        new0.settle(x -> layer(below, x));
        assertEquals(4096, new0.resultOf(r));
        assertEquals(0, old0.below.size(), "nothing goes to the old connection's loop");
    }

    @Test
    void writeBackTakesTheFlushAndFailsClosed() {
        SimDisk cacheDisk = new SimDisk(1 << 20, new SimDisk.Power(Long.MAX_VALUE), null);
        CacheDevice dev = device(CacheEngine.Mode.WRITE_BACK, cacheDisk);
        RecordingHookContext q0 = new RecordingHookContext(DEVICE);
        BlockHook h0 = dev.openQueue(q0);
        assertTrue(dev.failClosed());
        assertEquals(4096, dev.logicalBlockSize());
        BlockRequest flush = request(3, BlockOp.FLUSH, 0, null, false);
        assertEquals(HookAction.TAKE_OVER, h0.beforeDriver(flush));
        q0.settle(r -> r.length());
        assertEquals(0, q0.resultOf(flush));
        assertTrue(cacheDisk.flushes > 0);
    }

    /** {@code context} as queue {@code index} (the recording context is always queue 0). */
    private static HookContext onQueue(int index, RecordingHookContext context) {
        return new HookContext() {
            @Override
            public DeviceInfo device() {
                return context.device();
            }

            @Override
            public int queueIndex() {
                return index;
            }

            @Override
            public void complete(BlockRequest request, long result) {
                context.complete(request, result);
            }

            @Override
            public void execute(Runnable task) {
                context.execute(task);
            }

            @Override
            public BlockRequest child(BlockRequest parent) {
                return context.child(parent);
            }

            @Override
            public BlockRequest newRequest() {
                return context.newRequest();
            }

            @Override
            public void submitBelow(BlockRequest request, io.vhostblk.drivers.DriverCompletion done) {
                context.submitBelow(request, done);
            }
        };
    }

    /** The layers below as a RAM disk. */
    private static long layer(MemorySegment disk, BlockRequest r) {
        switch (r.op()) {
            case READ -> r.data().copyFrom(disk, r.offset(), 0, r.length());
            case WRITE -> r.data().copyTo(0, disk, r.offset(), r.length());
            default -> {
                return 0;
            }
        }
        return r.length();
    }
}
