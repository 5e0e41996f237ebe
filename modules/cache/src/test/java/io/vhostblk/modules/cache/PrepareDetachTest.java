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
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CacheDevice#prepareDetach}: a write-back cache writes every dirty block below (and flushes below) while the
 * guest keeps writing, so that the chain can drop it with nothing lost and nothing stale; if the layers below fail,
 * it refuses and stays a write-back cache.
 */
class PrepareDetachTest {

    private static final int BS = 4096;
    private static final long BLOCKS = 256;
    private static final DeviceInfo DEVICE = new DeviceInfo("d0", "vm1", "file", BLOCKS * BS, false, "/img");

    /** A write-back cache whose cache device completes when {@link #settle} runs it; the layers below are RAM. */
    private static final class Setup {
        final List<Runnable> cacheOps = new ArrayList<>();
        final SimDisk cacheDisk = new SimDisk(1 << 20, new SimDisk.Power(Long.MAX_VALUE), cacheOps);
        final MemorySegment below = Arena.ofAuto().allocate(BLOCKS * BS);
        final RecordingHookContext q0 = new RecordingHookContext(DEVICE);
        final CacheDevice dev;
        final BlockHook hook;
        boolean failWritesBelow;
        /** Whether the owner loop has stopped (only with {@code ownerGone}). */
        boolean stopped;
        int flushesBelow;
        private int nextSlot = 100;

        Setup() {
            this(false);
        }

        /** {@code ownerGone}: the owner loop has stopped (no front-end connected). */
        Setup(boolean ownerGone) {
            CacheHeader h = new CacheHeader(BS, 64, BLOCKS * BS, UUID.randomUUID(), "/img");
            CacheEngine engine = new CacheEngine(h, null, CacheEngine.Mode.WRITE_BACK, 1 << 20, "test");
            CacheDeviceIo io = CacheHookTest.ioOn(cacheDisk);
            dev = new CacheDevice("test", engine, !ownerGone ? io : new CacheDeviceIo() {
                @Override
                public Store open(HookContext owner) {
                    return io.open(owner);
                }

                @Override
                public void close(HookContext owner) {
                }

                @Override
                public boolean ownerStopped() {
                    return stopped;
                }
            }, "mem", false, null);
            hook = dev.openQueue(q0);
        }

        long layer(BlockRequest r) {
            switch (r.op()) {
                case READ -> r.data().copyFrom(below, r.offset(), 0, r.length());
                case WRITE -> {
                    if (failWritesBelow) {
                        return -Errno.EIO;
                    }
                    r.data().copyTo(0, below, r.offset(), r.length());
                }
                case FLUSH -> {
                    flushesBelow++;
                    return 0;
                }
                default -> {
                    return 0;
                }
            }
            return r.length();
        }

        /** Runs the loop: tasks, the cache device's operations and the layers below, until nothing moves. */
        void settle() {
            while (!cacheOps.isEmpty() || q0.waitingBelow() > 0) {
                while (!cacheOps.isEmpty()) {
                    cacheOps.removeFirst().run();
                }
                q0.settle(this::layer);
            }
            q0.settle(this::layer);
        }

        /** Starts a guest write of one block filled with {@code value}; the caller settles. */
        BlockRequest write(long block, int value) {
            MemorySegment buf = Arena.ofAuto().allocate(BS).fill((byte) value);
            BlockRequest r = new BlockRequest(nextSlot++, "d0", 0)
                    .set(BlockOp.WRITE, block * BS, BS, new IoVector(1).wrap(buf, 0, BS, false), false);
            assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(r));
            return r;
        }

        /** A guest read of one block through the cache: the value all its bytes hold, or -1. */
        int read(long block) {
            MemorySegment buf = Arena.ofAuto().allocate(BS);
            BlockRequest r = new BlockRequest(nextSlot++, "d0", 0)
                    .set(BlockOp.READ, block * BS, BS, new IoVector(1).wrap(buf, 0, BS, true), false);
            assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(r));
            settle();
            assertEquals(BS, q0.resultOf(r));
            return valueOf(buf, 0);
        }

        /** What a read returns once the cache left the chain: the layers below. */
        int belowValue(long block) {
            return valueOf(below, block * BS);
        }

        private static int valueOf(MemorySegment m, long at) {
            byte v = m.get(ValueLayout.JAVA_BYTE, at);
            for (long i = 0; i < BS; i++) {
                if (m.get(ValueLayout.JAVA_BYTE, at + i) != v) {
                    return -1;
                }
            }
            return v & 0xff;
        }

        /** Drives the loop (the pacer's ticks included) until {@code f} completes; at most {@code rounds} ticks. */
        void runUntilDone(CompletableFuture<Void> f, int rounds) {
            for (int i = 0; i < rounds && !f.isDone(); i++) {
                settle();
                dev.engine().tick();
            }
            settle();
        }
    }

    @Test
    void everyDirtyBlockReachesTheLayersBelowBeforeTheDetachIsReady() throws Exception {
        Setup s = new Setup();
        int[] expected = new int[(int) BLOCKS];
        for (int b = 0; b < 40; b++) {
            BlockRequest w = s.write(b, 10 + b);
            s.settle();
            assertEquals(BS, s.q0.resultOf(w));
            expected[b] = 10 + b;
        }
        assertEquals(40L * BS, s.dev.report().get("dirty_bytes"));
        assertEquals(0, s.belowValue(0), "write-back: nothing went below yet (no tick ran)");

        CompletableFuture<Void> ready = s.dev.prepareDetach();
        // A write-back write in flight when the cache switches to write-through: its cache write is not done yet.
        BlockRequest inFlight = s.write(3, 200);
        expected[3] = 200;
        assertFalse(ready.isDone());
        s.q0.runTasks(); // the switch and the start of the drain, before that cache write completes
        assertFalse(ready.isDone(), "a write issued in write-back mode is still in flight");
        s.settle();
        // Writes keep coming while the cache drains: into a dirty block, a clean one and a new one.
        for (int round = 0; round < 5 && !ready.isDone(); round++) {
            BlockRequest a = s.write(7, 100 + round);
            BlockRequest c = s.write(50 + round, 150 + round);
            expected[7] = 100 + round;
            expected[50 + round] = 150 + round;
            s.dev.engine().tick();
            s.settle();
            assertEquals(BS, s.q0.resultOf(a));
            assertEquals(BS, s.q0.resultOf(c));
        }
        s.runUntilDone(ready, 1000);
        assertEquals(BS, s.q0.resultOf(inFlight));
        assertTrue(ready.isDone() && !ready.isCompletedExceptionally(), "the drain finished");
        assertEquals(0L, s.dev.report().get("dirty_bytes"));
        assertTrue(s.flushesBelow > 0, "the layers below were flushed after the write-backs");
        assertEquals("write-through", s.dev.report().get("mode"));

        // A write after the drain goes below too: nothing new is dirty when the chain drops the cache.
        BlockRequest late = s.write(9, 33);
        expected[9] = 33;
        s.settle();
        assertEquals(BS, s.q0.resultOf(late));
        assertEquals(0L, s.dev.report().get("dirty_bytes"));

        // The chain drops the cache: reads go below and must see every acknowledged write.
        for (int b = 0; b < BLOCKS; b++) {
            assertEquals(expected[b], s.belowValue(b), "block " + b + " below after the drain");
        }
    }

    @Test
    void aFailingLayerBelowRefusesTheDetachAndTheCacheStaysWriteBack() {
        Setup s = new Setup();
        for (int b = 0; b < 8; b++) {
            s.write(b, 1 + b);
            s.settle();
        }
        s.failWritesBelow = true;
        CompletableFuture<Void> ready = s.dev.prepareDetach();
        s.runUntilDone(ready, 100);
        ExecutionException e = assertThrows(ExecutionException.class, ready::get);
        assertTrue(e.getCause().getMessage().contains("errno 5"), e.getCause().getMessage());
        assertEquals("write-back", s.dev.report().get("mode"), "the cache stays as it was");
        assertEquals(8L * BS, s.dev.report().get("dirty_bytes"), "no dirty block was dropped");
        for (int b = 0; b < 8; b++) {
            assertEquals(1 + b, s.read(b), "block " + b + " still reads its last write through the cache");
        }
        // The layers below recover: a second detach succeeds.
        s.failWritesBelow = false;
        CompletableFuture<Void> again = s.dev.prepareDetach();
        s.runUntilDone(again, 1000);
        assertTrue(again.isDone() && !again.isCompletedExceptionally());
        for (int b = 0; b < 8; b++) {
            assertEquals(1 + b, s.belowValue(b));
        }
    }

    @Test
    void withNoLoopRunningADirtyCacheRefusesAtOnce() {
        Setup s = new Setup(true);
        s.write(0, 5);
        s.settle();
        s.stopped = true; // the front-end disconnected: no task posted to the owner loop would run
        CompletableFuture<Void> ready = s.dev.prepareDetach();
        ExecutionException e = assertThrows(ExecutionException.class, ready::get);
        assertTrue(e.getCause().getMessage().contains("1 dirty blocks cannot be written back"), e.getCause().getMessage());
        assertEquals(0, s.q0.waitingBelow());
    }

    @Test
    void aCancelledDetachGoesBackToWriteBack() {
        Setup s = new Setup();
        s.write(0, 5);
        s.settle();
        CompletableFuture<Void> ready = s.dev.prepareDetach();
        ready.cancel(false);
        s.settle();
        assertEquals("write-back", s.dev.report().get("mode"));
        BlockRequest w = s.write(1, 6);
        s.settle();
        assertEquals(BS, s.q0.resultOf(w));
        assertEquals(2L * BS, s.dev.report().get("dirty_bytes"), "writes are write-back again");
    }
}
