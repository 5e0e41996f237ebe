package io.vhostblk.compat;

import io.vhostblk.compat.GuestRequests.Done;
import io.vhostblk.compat.GuestRequests.Posted;
import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.linux.Errno;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a module sees and causes when it sits in a device's hook chain: call order, bounce
 * buffers, self-completion, asynchronous take-over, its own requests to the layers beneath,
 * failures (bypass or fail closed), chain swaps under load, and the per-module counters. Every
 * check is on guest memory, used-ring answers, what reached the driver, and what the hooks saw.
 */
class HookChainSemanticsTest {
    private static final long DISK = 4 << 20;
    private static final int BLOCK = 4096;

    private final List<String> log = new ArrayList<>();
    private final List<String> driverLog = new ArrayList<>();
    private final List<AutoCloseable> closeLast = new ArrayList<>();
    private final List<GuestRequests> guests = new ArrayList<>();
    private RamDriver disk;
    private GuestRequests g;
    private BlockDevice device;

    @BeforeEach
    void setUp() throws Exception {
        disk = RamDriver.create(DISK);
        g = guest();
    }

    @AfterEach
    void tearDown() throws Exception {
        for (GuestRequests q : guests) {
            q.close();
        }
        disk.close();
        for (AutoCloseable c : closeLast) {
            c.close();
        }
    }

    private GuestRequests guest() throws Exception {
        GuestRequests q = new GuestRequests(16 << 20, 128);
        guests.add(q);
        return q;
    }

    /** A device over the RAM disk whose driver logs each request as {@code driver:OP} (and OP@offset in driverLog). */
    private BlockDevice openRecorded(GuestRequests q, String id) throws Exception {
        BlockDriver d = TestDrivers.recording(disk, r -> {
            log.add("driver:" + r.op());
            driverLog.add(r.op() + "@" + r.offset());
        });
        BlockDevice dev = new BlockDevice(id, "vm1", d, true);
        q.open(dev);
        return dev;
    }

    // ---- modules ----

    static ChainEntry module(String name, Function<HookContext, BlockHook> open) {
        return module(name, false, open);
    }

    static ChainEntry module(String name, boolean failClosed, Function<HookContext, BlockHook> open) {
        return new ChainEntry(name, "1.0", new ModuleInstance() {
            @Override
            public BlockHook openQueue(HookContext context) {
                return open.apply(context);
            }

            @Override
            public boolean failClosed() {
                return failClosed;
            }
        });
    }

    /** Passes everything on, logging {@code before:NAME} and {@code after:NAME}. */
    private ChainEntry recorder(String name) {
        return module(name, c -> new BlockHook() {
            @Override
            public HookAction beforeDriver(BlockRequest r) {
                log.add("before:" + name);
                return HookAction.PASS;
            }

            @Override
            public long afterDriver(BlockRequest r, long result) {
                log.add("after:" + name);
                return result;
            }
        });
    }

    /** Like {@link #recorder} but logs the result it sees: {@code after:NAME=RESULT}. */
    private ChainEntry resultRecorder(String name) {
        return module(name, c -> new BlockHook() {
            @Override
            public HookAction beforeDriver(BlockRequest r) {
                log.add("before:" + name);
                return HookAction.PASS;
            }

            @Override
            public long afterDriver(BlockRequest r, long result) {
                log.add("after:" + name + "=" + result);
                return result;
            }
        });
    }

    private static byte[] pattern(int len, int seed) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = (byte) (seed * 31 + i * 7 + (i >> 8));
        }
        return b;
    }

    private long bufferWith(byte[] data) {
        long gpa = g.buffer(data.length, 0);
        g.put(gpa, data);
        return gpa;
    }

    // ---- 1. order ----

    @Test
    void preCallHooksRunInChainOrderAndCompletionHooksInReverse() throws Exception {
        device = openRecorded(g, "disk0");
        device.hooks(new HookChain(List.of(recorder("A"), recorder("B"), recorder("C"))));
        Done w = g.run(VirtioBlk.T_OUT, 8, bufferWith(pattern(BLOCK, 1)), BLOCK, false);
        assertEquals(VirtioBlk.S_OK, w.status());
        assertEquals(List.of("before:A", "before:B", "before:C", "driver:WRITE", "after:C", "after:B", "after:A"), log);

        log.clear();
        device.updateChain(c -> c.moved("C", 0));
        assertEquals(List.of("C", "A", "B"), device.chain().names());
        long dst = g.buffer(BLOCK, 0);
        Done r = g.run(VirtioBlk.T_IN, 8, dst, BLOCK, true);
        assertEquals(VirtioBlk.S_OK, r.status());
        assertEquals(BLOCK + 1, r.usedLength());
        assertEquals(List.of("before:C", "before:A", "before:B", "driver:READ", "after:B", "after:A", "after:C"), log);
        assertArrayEquals(pattern(BLOCK, 1), g.bytes(dst, BLOCK));
    }

    @Test
    void aStoppedQueueTellsEachHookItOpenedOnce() throws Exception {
        GuestRequests q = guest();
        device = openRecorded(q, "disk0");
        device.hooks(new HookChain(List.of(module("A", c -> new BlockHook() {
            @Override
            public HookAction beforeDriver(BlockRequest r) {
                return HookAction.PASS;
            }

            @Override
            public void queueStopped() {
                log.add("stopped:A");
            }
        }))));
        assertEquals(VirtioBlk.S_OK, q.run(VirtioBlk.T_OUT, 8, q.buffer(BLOCK, 0), BLOCK, false).status());
        assertTrue(log.stream().noneMatch(e -> e.startsWith("stopped")), log.toString());
        guests.remove(q);
        q.close();
        assertEquals(1, log.stream().filter(e -> e.equals("stopped:A")).count(), log.toString());
    }

    // ---- 2. pass-on with a bounce buffer ----

    @Test
    void aModuleCanPassAWriteOnFromItsOwnBounceBuffer() throws Exception {
        Arena arena = Arena.ofShared();
        closeLast.add(arena);
        int[] opened = new int[1];
        IoVector[] bounceIov = new IoVector[1];
        List<IoVector> iovAtDriver = new ArrayList<>();
        BlockDriver d = TestDrivers.recording(disk, r -> {
            if (r.op() == BlockOp.WRITE) {
                iovAtDriver.add(r.data());
            }
        });
        device = new BlockDevice("disk0", "vm1", d, true);
        g.open(device);
        device.hooks(new HookChain(List.of(module("invert", c -> {
            opened[0]++;
            MemorySegment buf = arena.allocate(64 * 1024, 4096);
            IoVector bounce = new IoVector(1);
            bounceIov[0] = bounce;
            return r -> {
                if (r.op() == BlockOp.WRITE) {
                    // What goes below is not the guest's request: a child request over the bounce buffer.
                    int n = (int) r.length();
                    byte[] data = Iov.read(r.data(), n);
                    for (int i = 0; i < n; i++) {
                        data[i] ^= (byte) 0xff;
                    }
                    MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, n);
                    BlockRequest child = c.child(r).set(BlockOp.WRITE, r.offset(), n, bounce.wrap(buf, 0, n, false), false);
                    c.submitBelow(child, (x, result) -> c.complete(r, result));
                    return HookAction.TAKE_OVER;
                }
                return HookAction.PASS;
            };
        }))));

        byte[] guestData = pattern(2 * BLOCK, 2);
        byte[] inverted = guestData.clone();
        for (int i = 0; i < inverted.length; i++) {
            inverted[i] ^= (byte) 0xff;
        }
        for (int round = 0; round < 3; round++) {
            long src = bufferWith(guestData);
            Done w = g.run(VirtioBlk.T_OUT, 16 + round * 16, src, guestData.length, false);
            assertEquals(VirtioBlk.S_OK, w.status());
            assertEquals(1, w.usedLength());
            assertArrayEquals(guestData, g.bytes(src, guestData.length), "the guest's buffer is untouched");
        }
        assertEquals(1, opened[0], "the hook (and its bounce buffer) was made once for the queue");
        assertEquals(List.of(bounceIov[0], bounceIov[0], bounceIov[0]), iovAtDriver, "the driver wrote from the bounce buffer");

        for (int round = 0; round < 3; round++) {
            long dst = g.buffer(guestData.length, 0x11);
            Done r = g.run(VirtioBlk.T_IN, 16 + round * 16, dst, guestData.length, true);
            assertEquals(VirtioBlk.S_OK, r.status());
            assertArrayEquals(inverted, g.bytes(dst, guestData.length), "the disk holds the bounce bytes");
        }
    }

    // ---- 3. self-completion ----

    @Test
    void aModuleAnsweringAReadItselfKeepsItFromTheDriverAndTheHooksBelow() throws Exception {
        device = openRecorded(g, "disk0");
        byte[] answer = pattern(BLOCK, 3);
        ChainEntry answering = module("answer", c -> r -> {
            if (r.op() != BlockOp.READ) {
                return HookAction.PASS;
            }
            log.add("answer:" + r.offset());
            Iov.write(r.data(), answer);
            r.result(r.length());
            return HookAction.COMPLETE;
        });
        device.hooks(new HookChain(List.of(resultRecorder("above"), answering, recorder("below"))));

        long dst = g.buffer(BLOCK, 0x55);
        Done r = g.run(VirtioBlk.T_IN, 24, dst, BLOCK, true);
        assertEquals(VirtioBlk.S_OK, r.status());
        assertEquals(BLOCK + 1, r.usedLength());
        assertArrayEquals(answer, g.bytes(dst, BLOCK));
        assertEquals(List.of("before:above", "answer:" + 24 * 512, "after:above=" + BLOCK), log);
        assertEquals(List.of(), driverLog, "the driver saw nothing");
        assertEquals(0, g.context.inFlight());

        log.clear();
        Done w = g.run(VirtioBlk.T_OUT, 24, dst, BLOCK, false);
        assertEquals(VirtioBlk.S_OK, w.status());
        assertEquals(List.of("before:above", "before:below", "driver:WRITE", "after:below", "after:above=" + BLOCK), log,
                "writes pass on as usual");
    }

    // ---- 4. asynchronous take-over and a module's own requests ----

    @Test
    void whatAModuleTaskSendsBelowIsSubmittedBeforeTheLoopCouldSleep() throws Exception {
        // A task given to execute (a request handed over from another queue, a worker's result) that sends a
        // request below: the driver must get it flushed by the same reap, or a loop that sleeps next waits forever.
        List<String> events = new ArrayList<>();
        device = new BlockDevice("disk0", "vm1", TestDrivers.batchLogging(disk, events), true);
        g.open(device);
        ChainEntry later = module("later", c -> r -> {
            c.execute(() -> c.submitBelow(c.child(r).set(r.op(), r.offset(), r.length(), r.data(), false),
                    (child, result) -> c.complete(child.parent(), result)));
            return HookAction.TAKE_OVER;
        });
        device.hooks(new HookChain(List.of(later)));
        g.start(VirtioBlk.T_IN, 8, g.buffer(BLOCK, 0x66), BLOCK, true);
        g.context.flushBatch();
        events.clear();
        g.context.reap();
        assertEquals(List.of("submit", "flush"), events);
        assertEquals(1, g.loopUntil(() -> g.outstanding() == 0, 10_000).size());
    }

    @Test
    void aRequestTakenOverToAnotherThreadIsAnsweredOnceThroughTheMailbox() throws Exception {
        ExecutorService workers = Executors.newFixedThreadPool(4);
        closeLast.add(() -> {
            workers.shutdownNow();
            workers.awaitTermination(5, TimeUnit.SECONDS);
        });
        device = openRecorded(g, "disk0");
        Set<String> workerThreads = Collections.synchronizedSet(new HashSet<>());
        Thread loop = Thread.currentThread();
        List<String> wrongThread = Collections.synchronizedList(new ArrayList<>());
        ChainEntry async = module("async", c -> r -> {
            if (r.op() != BlockOp.READ) {
                return HookAction.PASS;
            }
            workers.execute(() -> {
                workerThreads.add(Thread.currentThread().getName());
                Iov.write(r.data(), pattern((int) r.length(), (int) (r.offset() / BLOCK)));
                c.execute(() -> {
                    if (Thread.currentThread() != loop) {
                        wrongThread.add(Thread.currentThread().getName());
                    }
                    c.complete(r, r.length());
                });
            });
            return HookAction.TAKE_OVER;
        });
        device.hooks(new HookChain(List.of(resultRecorder("above"), async, recorder("below"))));

        int n = 16;
        List<Posted> posted = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            posted.add(g.start(VirtioBlk.T_IN, (long) i * 8, g.buffer(BLOCK, 0x66), BLOCK, true));
        }
        g.context.flushBatch();
        assertEquals(n, g.context.inFlight());
        List<Done> done = g.loopUntil(() -> g.outstanding() == 0, 10_000);
        assertEquals(n, done.size());
        // Keep looping a while: nothing may be answered a second time.
        long until = System.nanoTime() + 100_000_000L;
        while (System.nanoTime() < until) {
            g.context.reap();
            assertEquals(List.of(), g.reapUsed());
        }
        Map<Integer, Integer> answersPerHead = new HashMap<>();
        for (int[] call : g.sinkCalls) {
            answersPerHead.merge(call[0], 1, Integer::sum);
        }
        for (Posted p : posted) {
            assertEquals(1, answersPerHead.get(p.head()), "head " + p.head() + " answered once");
        }
        for (Done d : done) {
            assertEquals(VirtioBlk.S_OK, d.status());
            assertEquals(BLOCK + 1, d.usedLength());
            assertArrayEquals(pattern(BLOCK, (int) (d.posted().sector() / 8)), g.bytes(d.posted().data(), BLOCK));
        }
        assertEquals(0, g.context.inFlight());
        assertEquals(List.of(), wrongThread, "completion tasks run on the queue's loop");
        assertTrue(workerThreads.size() >= 1);
        assertEquals(List.of(), driverLog, "taken-over reads never reached the driver");
        assertEquals(n, Collections.frequency(log, "before:above"));
        assertEquals(n, Collections.frequency(log, "after:above=" + BLOCK));
        assertEquals(0, Collections.frequency(log, "before:below"));
        Map<String, Long> counters = device.chain().find("async").orElseThrow().counters();
        assertEquals(n, counters.get("seen"));
        assertEquals(n, counters.get("completed"));
        assertEquals(0, counters.get("passed"));
    }

    /**
     * A remapping module: the guest's sector X lives at X + delta, where delta is an 8-byte value
     * in the device's first sector. A guest READ is taken over; the module reads the metadata
     * sector below it, then reads the remapped data into the guest's buffers, then completes the
     * guest request. A guest WRITE goes to the remapped place the same way and is completed only
     * once the module's own write finished.
     */
    private ChainEntry remapper(Arena arena, List<Long> results) {
        return module("remap", c -> {
            BlockRequest meta = c.newRequest();
            BlockRequest data = c.newRequest();
            MemorySegment metaBuf = arena.allocate(512, 4096);
            IoVector metaData = IoVector.over(metaBuf, true);
            return r -> {
                if (r.op() != BlockOp.READ && r.op() != BlockOp.WRITE) {
                    return HookAction.PASS;
                }
                BlockOp op = r.op();
                meta.set(BlockOp.READ, 0, 512, metaData, false);
                c.submitBelow(meta, (m, metaResult) -> {
                    results.add(metaResult);
                    long delta = metaBuf.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
                    data.set(op, r.offset() + delta, r.length(), r.data(), false);
                    c.submitBelow(data, (q, dataResult) -> {
                        results.add(dataResult);
                        c.complete(r, dataResult);
                    });
                });
                return HookAction.TAKE_OVER;
            };
        });
    }

    private static final long DELTA = 1 << 20;

    /** Writes the remap metadata (delta) and guest data at sector 40 + delta, with no chain. */
    private byte[] prepareRemappedDisk() throws Exception {
        byte[] meta = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN).putLong(0, DELTA).array();
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_OUT, 0, bufferWith(meta), 512, false).status());
        byte[] stored = pattern(BLOCK, 4);
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_OUT, 40 + DELTA / 512, bufferWith(stored), BLOCK, false).status());
        log.clear();
        driverLog.clear();
        return stored;
    }

    @Test
    void aModuleReadsBelowItselfBeforeAnsweringWithASynchronousDriver() throws Exception {
        Arena arena = Arena.ofShared();
        closeLast.add(arena);
        device = openRecorded(g, "disk0");
        byte[] stored = prepareRemappedDisk();
        List<Long> results = new ArrayList<>();
        device.hooks(new HookChain(List.of(resultRecorder("above"), remapper(arena, results), resultRecorder("below"))));

        long dst = g.buffer(BLOCK, 0);
        Done r = g.run(VirtioBlk.T_IN, 40, dst, BLOCK, true);
        assertEquals(VirtioBlk.S_OK, r.status());
        assertArrayEquals(stored, g.bytes(dst, BLOCK));
        assertEquals(List.of(512L, (long) BLOCK), results, "each of the module's callbacks got its result");
        assertEquals(List.of("READ@0", "READ@" + (40 * 512 + DELTA)), driverLog);
        assertEquals(0, g.context.inFlight());
        // The driver answers inside submit, so the whole take-over finishes inside beforeDriver:
        // the hook above must still see the guest request's completion, exactly once.
        assertEquals(List.of("before:above",
                "before:below", "driver:READ", "after:below=512",
                "before:below", "driver:READ", "after:below=" + BLOCK,
                "after:above=" + BLOCK), log);
    }

    @Test
    void aModuleReadsBelowItselfBeforeAnsweringWithAnAsynchronousDriver() throws Exception {
        Arena arena = Arena.ofShared();
        closeLast.add(arena);
        BlockDriver d = TestDrivers.deferred(TestDrivers.recording(disk, r -> {
            log.add("driver:" + r.op());
            driverLog.add(r.op() + "@" + r.offset());
        }), new Random(1), 1.0);
        device = new BlockDevice("disk0", "vm1", d, true);
        g.open(device);
        byte[] stored = prepareRemappedDisk();
        List<Long> results = new ArrayList<>();
        device.hooks(new HookChain(List.of(resultRecorder("above"), remapper(arena, results), resultRecorder("below"))));

        long dst = g.buffer(BLOCK, 0);
        Posted p = g.start(VirtioBlk.T_IN, 40, dst, BLOCK, true);
        g.context.flushBatch();
        assertEquals(List.of(), g.reapUsed());
        assertEquals(2, g.context.inFlight(), "the guest request and the module's metadata read");
        List<Done> done = g.loopUntil(() -> g.outstanding() == 0, 5_000);
        assertEquals(1, done.size());
        assertEquals(VirtioBlk.S_OK, done.getFirst().status());
        assertArrayEquals(stored, g.bytes(p.data(), BLOCK));
        assertEquals(List.of(512L, (long) BLOCK), results);
        assertEquals(List.of("READ@0", "READ@" + (40 * 512 + DELTA)), driverLog);
        assertEquals(List.of("before:above",
                "before:below", "driver:READ", "after:below=512",
                "before:below", "driver:READ", "after:below=" + BLOCK,
                "after:above=" + BLOCK), log);
        assertEquals(0, g.context.inFlight());

        // A WRITE is acknowledged only after the module's own write below it finished.
        log.clear();
        driverLog.clear();
        results.clear();
        byte[] fresh = pattern(BLOCK, 5);
        g.start(VirtioBlk.T_OUT, 48, bufferWith(fresh), BLOCK, false);
        g.context.flushBatch();
        g.context.reap(); // the metadata read completes; the module's write is now queued
        assertEquals(List.of(), g.reapUsed(), "not acknowledged before the module's write completed");
        assertEquals(List.of(512L), results);
        done = g.loopUntil(() -> g.outstanding() == 0, 5_000);
        assertEquals(VirtioBlk.S_OK, done.getFirst().status());
        assertEquals(List.of(512L, (long) BLOCK), results);
        assertEquals(List.of("READ@0", "WRITE@" + (48 * 512 + DELTA)), driverLog);

        // Read it back with no module: it is at the remapped place, not at the guest's sector.
        device.hooks(null);
        long back = g.buffer(BLOCK, 0);
        Posted bp = g.start(VirtioBlk.T_IN, 48 + DELTA / 512, back, BLOCK, true);
        g.loopUntil(() -> g.outstanding() == 0, 5_000);
        assertArrayEquals(fresh, g.bytes(bp.data(), BLOCK));
        Posted zp = g.start(VirtioBlk.T_IN, 48, g.buffer(BLOCK, 0x33), BLOCK, true);
        g.loopUntil(() -> g.outstanding() == 0, 5_000);
        assertArrayEquals(new byte[BLOCK], g.bytes(zp.data(), BLOCK));
        assertEquals(0, g.context.inFlight());
    }

    /**
     * The SPI lets a hook call {@link HookContext#complete} "from a hook method": a hook that takes
     * a request over and completes it before {@code beforeDriver} returns. The hooks above must see
     * the completion once, the hook itself and those below it not at all, whatever the slot served
     * before (here: a WRITE on the same head that passed the whole chain).
     */
    @Test
    void aHookCompletingARequestInsideItsOwnPreCallHookIsSeenOnlyByTheHooksAbove() throws Exception {
        device = openRecorded(g, "disk0");
        byte[] answer = pattern(BLOCK, 9);
        ChainEntry inline = module("inline", c -> new BlockHook() {
            @Override
            public HookAction beforeDriver(BlockRequest r) {
                log.add("before:inline");
                if (r.op() == BlockOp.READ) {
                    Iov.write(r.data(), answer);
                    c.complete(r, r.length());
                    return HookAction.TAKE_OVER;
                }
                return HookAction.PASS;
            }

            @Override
            public long afterDriver(BlockRequest r, long result) {
                log.add("after:inline");
                return result;
            }
        });
        device.hooks(new HookChain(List.of(resultRecorder("above"), inline, recorder("below"))));
        long buf = g.buffer(BLOCK, 0);
        Done w = g.run(VirtioBlk.T_OUT, 8, buf, BLOCK, false);
        assertEquals(VirtioBlk.S_OK, w.status());
        log.clear();
        driverLog.clear();

        Done r = g.run(VirtioBlk.T_IN, 8, buf, BLOCK, true);
        assertEquals(w.posted().head(), r.posted().head(), "the same head (and slot) serves both requests");
        assertEquals(VirtioBlk.S_OK, r.status());
        assertArrayEquals(answer, g.bytes(buf, BLOCK));
        assertEquals(List.of(), driverLog);
        assertEquals(List.of("before:above", "before:inline", "after:above=" + BLOCK), log);
    }

    // ---- 5. errors ----

    /** A module class that throws on its pre-call hook when told to. */
    static final class Fragile implements ModuleInstance {
        final boolean failClosed;
        final List<String> seen = Collections.synchronizedList(new ArrayList<>());
        volatile boolean throwBefore;
        volatile boolean throwAfter;

        Fragile(boolean failClosed) {
            this.failClosed = failClosed;
        }

        @Override
        public BlockHook openQueue(HookContext context) {
            return new BlockHook() {
                @Override
                public HookAction beforeDriver(BlockRequest r) {
                    seen.add("before:" + r.op());
                    if (throwBefore) {
                        throwBefore = false;
                        throw new IllegalStateException("fragile module broke before");
                    }
                    return HookAction.PASS;
                }

                @Override
                public long afterDriver(BlockRequest r, long result) {
                    seen.add("after:" + r.op());
                    if (throwAfter) {
                        throwAfter = false;
                        throw new IllegalStateException("fragile module broke after");
                    }
                    return result;
                }
            };
        }

        @Override
        public boolean failClosed() {
            return failClosed;
        }
    }

    /** Captures ERROR (SEVERE) records of the compat-lib's loggers. */
    private List<LogRecord> captureErrors() {
        Logger logger = Logger.getLogger("io.vhostblk.compat");
        List<LogRecord> records = Collections.synchronizedList(new ArrayList<>());
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord record) {
                if (record.getLevel().intValue() >= Level.SEVERE.intValue()) {
                    records.add(record);
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        logger.addHandler(h);
        closeLast.add(() -> logger.removeHandler(h));
        return records;
    }

    private static boolean mentions(List<LogRecord> records, String text) {
        synchronized (records) {
            return records.stream().anyMatch(r -> r.getMessage() != null && r.getMessage().contains(text));
        }
    }

    @Test
    void aModuleThrowingBeforeTheDriverFailsThatRequestAndIsBypassedOnThatDeviceOnly() throws Exception {
        List<LogRecord> errors = captureErrors();
        device = openRecorded(g, "disk0");
        Fragile fragile = new Fragile(false);
        ChainEntry fragileEntry = new ChainEntry("fragile", "1.0", fragile);
        device.hooks(new HookChain(List.of(resultRecorder("above"), fragileEntry, recorder("below"))));

        GuestRequests g2 = guest();
        BlockDriver disk2 = RamDriver.create(DISK);
        closeLast.add(disk2::close);
        BlockDevice device2 = new BlockDevice("disk1", "vm1", disk2, true);
        g2.open(device2);
        Fragile fragile2 = new Fragile(false);
        device2.hooks(new HookChain(List.of(new ChainEntry("fragile", "1.0", fragile2))));

        fragile.throwBefore = true;
        byte[] data = pattern(BLOCK, 6);
        Done failed = g.run(VirtioBlk.T_OUT, 8, bufferWith(data), BLOCK, false);
        assertEquals(VirtioBlk.S_IOERR, failed.status());
        assertEquals(1, failed.usedLength());
        assertEquals(List.of("before:above", "after:above=" + -Errno.EIO), log, "nothing below the failed module ran");
        assertEquals(List.of(), driverLog);
        assertEquals(List.of("above", "below"), device.chain().names());
        assertTrue(mentions(errors, "fragile"), "an error naming the module was logged");
        assertNull(device.failure());
        Map<String, Long> c = fragileEntry.counters();
        assertEquals(1, c.get("seen"));
        assertEquals(1, c.get("errors"));
        assertEquals(0, c.get("passed"));

        log.clear();
        Done ok = g.run(VirtioBlk.T_OUT, 8, bufferWith(data), BLOCK, false);
        assertEquals(VirtioBlk.S_OK, ok.status());
        assertEquals(List.of("before:above", "before:below", "driver:WRITE", "after:below", "after:above=" + BLOCK), log);
        assertEquals(List.of("before:WRITE"), fragile.seen, "the disabled module sees no more requests");
        long back = g.buffer(BLOCK, 0);
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_IN, 8, back, BLOCK, true).status());
        assertArrayEquals(data, g.bytes(back, BLOCK));

        // The other device, with its own instance of the same module, is not affected.
        assertEquals(List.of("fragile"), device2.chain().names());
        long src2 = g2.buffer(BLOCK, 0x42);
        assertEquals(VirtioBlk.S_OK, g2.run(VirtioBlk.T_OUT, 8, src2, BLOCK, false).status());
        long dst2 = g2.buffer(BLOCK, 0);
        assertEquals(VirtioBlk.S_OK, g2.run(VirtioBlk.T_IN, 8, dst2, BLOCK, true).status());
        assertArrayEquals(g2.bytes(src2, BLOCK), g2.bytes(dst2, BLOCK));
        assertEquals(List.of("before:WRITE", "after:WRITE", "before:READ", "after:READ"), fragile2.seen);
        assertEquals(0, g.context.inFlight());
        assertEquals(0, g2.context.inFlight());
    }

    @Test
    void aModuleChangingTheRequestItWasGivenFailsItBeforeTheLayersBelowSeeIt() throws Exception {
        List<LogRecord> errors = captureErrors();
        device = openRecorded(g, "disk0");
        ChainEntry mover = module("mover", c -> r -> {
            if (r.op() == BlockOp.WRITE) {
                r.set(BlockOp.WRITE, r.offset() + BLOCK, r.length(), r.data(), false); // the v1 way: now refused
            }
            return HookAction.PASS;
        });
        device.hooks(new HookChain(List.of(resultRecorder("above"), mover, recorder("below"))));
        byte[] data = pattern(BLOCK, 8);
        Done failed = g.run(VirtioBlk.T_OUT, 8, bufferWith(data), BLOCK, false);
        assertEquals(VirtioBlk.S_IOERR, failed.status());
        assertEquals(List.of("before:above", "after:above=" + -Errno.EIO), log, "nothing below the module ran");
        assertEquals(List.of(), driverLog);
        assertEquals(List.of("above", "below"), device.chain().names(), "the module was taken out of the chain");
        assertTrue(mentions(errors, "child request"), "the log says what to do instead");
        assertEquals(0, g.context.inFlight());
    }

    @Test
    void aModuleThatCompletesARequestAndAlsoPassesItIsTakenOutAndTheGuestGetsOneAnswer() throws Exception {
        List<LogRecord> errors = captureErrors();
        device = openRecorded(g, "disk0");
        ChainEntry confused = module("confused", c -> r -> {
            if (r.op() == BlockOp.READ) {
                c.complete(r, r.length()); // answers it ...
                return HookAction.PASS;    // ... and passes it on as well
            }
            return HookAction.PASS;
        });
        device.hooks(new HookChain(List.of(resultRecorder("above"), confused, recorder("below"))));
        Done r = g.run(VirtioBlk.T_IN, 8, g.buffer(BLOCK, 0), BLOCK, true);
        assertEquals(VirtioBlk.S_OK, r.status(), "the answer it gave stands");
        assertEquals(List.of("before:above", "after:above=" + BLOCK), log, "nothing below ran, the guest was answered once");
        assertEquals(List.of(), driverLog);
        assertEquals(List.of("above", "below"), device.chain().names());
        assertTrue(mentions(errors, "confused"));
        assertEquals(0, g.context.inFlight());
    }

    @Test
    void aFailClosedModuleThatThrowsStopsTheDevice() throws Exception {
        List<LogRecord> errors = captureErrors();
        device = openRecorded(g, "disk0");
        Fragile crypt = new Fragile(true);
        device.hooks(new HookChain(List.of(resultRecorder("above"), new ChainEntry("crypt", "1.0", crypt))));
        long buf = bufferWith(pattern(BLOCK, 7));
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_OUT, 8, buf, BLOCK, false).status());
        log.clear();
        driverLog.clear();

        crypt.throwBefore = true;
        assertEquals(VirtioBlk.S_IOERR, g.run(VirtioBlk.T_IN, 8, g.buffer(BLOCK, 0), BLOCK, true).status());
        assertNotNull(device.failure());
        assertTrue(device.failure().contains("crypt"), device.failure());
        assertEquals(List.of("above", "crypt"), device.chain().names(), "the module stays: it cannot be bypassed");
        assertTrue(mentions(errors, "crypt"));
        log.clear();

        for (int type : new int[]{VirtioBlk.T_IN, VirtioBlk.T_OUT, VirtioBlk.T_FLUSH}) {
            long dst = g.buffer(BLOCK, 0x5a);
            Done d = type == VirtioBlk.T_FLUSH ? g.run(type, 0, 0, 0, false) : g.run(type, 8, dst, BLOCK, type == VirtioBlk.T_IN);
            assertEquals(VirtioBlk.S_IOERR, d.status(), "type " + type);
            if (type == VirtioBlk.T_IN) {
                byte[] untouched = new byte[BLOCK];
                Arrays.fill(untouched, (byte) 0x5a);
                assertArrayEquals(untouched, g.bytes(dst, BLOCK), "no data reaches the guest");
            }
        }
        assertEquals(List.of(), log, "no hook runs on a failed device");
        assertEquals(List.of(), driverLog, "nothing reaches the driver");
        assertEquals(0, g.context.inFlight());
    }

    @Test
    void aModuleThrowingAfterTheDriverFailsThatRequestToo() throws Exception {
        List<LogRecord> errors = captureErrors();
        device = openRecorded(g, "disk0");
        Fragile fragile = new Fragile(false);
        ChainEntry entry = new ChainEntry("fragile", "1.0", fragile);
        device.hooks(new HookChain(List.of(resultRecorder("above"), entry)));
        fragile.throwAfter = true;
        Done d = g.run(VirtioBlk.T_OUT, 8, bufferWith(pattern(BLOCK, 8)), BLOCK, false);
        assertEquals(VirtioBlk.S_IOERR, d.status());
        assertEquals(List.of("before:above", "driver:WRITE", "after:above=" + -Errno.EIO), log);
        assertEquals(List.of("above"), device.chain().names());
        assertTrue(mentions(errors, "fragile"));
        assertEquals(1, entry.counters().get("errors"));
        assertEquals(1, entry.counters().get("passed"));
        log.clear();
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_IN, 8, g.buffer(BLOCK, 0), BLOCK, true).status());
        assertEquals(List.of("before:above", "driver:READ", "after:above=" + BLOCK), log);
    }

    // ---- 6. hot swap under load ----

    /** A pass-through hook that checks it only sees completions of requests it passed on. */
    static final class Counting implements BlockHook {
        final String name;
        final List<String> problems;
        final Set<Integer> passed = new HashSet<>();
        long before;
        long after;

        Counting(String name, List<String> problems) {
            this.name = name;
            this.problems = problems;
        }

        @Override
        public HookAction beforeDriver(BlockRequest r) {
            before++;
            if (!passed.add(r.slot())) {
                problems.add(name + ": slot " + r.slot() + " seen again before it completed");
            }
            return HookAction.PASS;
        }

        @Override
        public long afterDriver(BlockRequest r, long result) {
            after++;
            if (!passed.remove(r.slot())) {
                problems.add(name + ": completion of slot " + r.slot() + " it did not pass on");
            }
            return result;
        }
    }

    private static final class Expected {
        long seen;
        long passed;
        long completed;
        long bytes;
    }

    @Test
    void swappingTheChainUnderLoadLosesAndDuplicatesNothing() throws Exception {
        Random random = new Random(20240601);
        BlockDriver d = TestDrivers.deferred(disk, random, 0.25);
        device = new BlockDevice("disk0", "vm1", d, true);
        VirtioBlkHandler ctx = g.open(device);
        List<String> problems = new ArrayList<>();
        Map<ChainEntry, List<Counting>> hooksOf = new IdentityHashMap<>();
        Function<String, ChainEntry> counting = name -> {
            ChainEntry[] self = new ChainEntry[1];
            self[0] = module(name, c -> {
                Counting h = new Counting(name, problems);
                hooksOf.computeIfAbsent(self[0], k -> new ArrayList<>()).add(h);
                return h;
            });
            return self[0];
        };
        ChainEntry a = counting.apply("a");
        ChainEntry[] b = {counting.apply("b")};
        List<ChainEntry> allB = new ArrayList<>(List.of(b[0]));
        // "flush" takes FLUSH requests over and answers them from the loop's mailbox later.
        long[] flushTaken = new long[1];
        ChainEntry flusher = module("flush", c -> r -> {
            if (r.op() != BlockOp.FLUSH) {
                return HookAction.PASS;
            }
            flushTaken[0]++;
            c.execute(() -> c.complete(r, 0));
            return HookAction.TAKE_OVER;
        });
        device.hooks(new HookChain(List.of(a, flusher)));

        int blocks = 128;
        byte[][] model = new byte[blocks][BLOCK];
        boolean[] blockBusy = new boolean[blocks];
        Map<Integer, Integer> blockOfHead = new HashMap<>();
        Map<Integer, byte[]> expectedRead = new HashMap<>();
        List<Long> freeData = new ArrayList<>();
        for (int i = 0; i < 128; i++) {
            freeData.add(g.buffer(BLOCK, 0));
        }
        Map<Integer, Long> dataOfHead = new HashMap<>();
        Map<ChainEntry, Expected> expected = new IdentityHashMap<>();

        int total = 4000;
        int swaps = 0;
        int maxInFlight = 0;
        int submitted = 0;
        long iterations = 0;
        while (submitted < total || g.outstanding() > 0) {
            if (++iterations > 1_000_000) {
                throw new AssertionError("no progress: " + g.outstanding() + " outstanding");
            }
            while (submitted < total && g.outstanding() < 64) {
                int kind = random.nextInt(10);
                int type = kind == 0 ? VirtioBlk.T_FLUSH : kind <= 4 ? VirtioBlk.T_OUT : VirtioBlk.T_IN;
                int block = -1;
                if (type != VirtioBlk.T_FLUSH) {
                    for (int tries = 0; tries < 1000 && block < 0; tries++) {
                        int cand = random.nextInt(blocks);
                        if (!blockBusy[cand]) {
                            block = cand;
                        }
                    }
                    if (block < 0) {
                        break;
                    }
                }
                long data = 0;
                if (type == VirtioBlk.T_OUT) {
                    byte[] bytes = new byte[BLOCK];
                    random.nextBytes(bytes);
                    data = freeData.removeLast();
                    g.put(data, bytes);
                    model[block] = bytes;
                } else if (type == VirtioBlk.T_IN) {
                    data = freeData.removeLast();
                    g.ram.at(data, BLOCK).fill((byte) 0xee);
                }
                // The chain the request starts on: the device's current one.
                for (ChainEntry e : device.chain().entries()) {
                    Expected x = expected.computeIfAbsent(e, k -> new Expected());
                    x.seen++;
                    if (type != VirtioBlk.T_FLUSH) {
                        x.bytes += BLOCK;
                    }
                    if (e == flusher && type == VirtioBlk.T_FLUSH) {
                        x.completed++;
                        break;
                    }
                    x.passed++;
                }
                Posted p = type == VirtioBlk.T_FLUSH
                        ? g.start(type, 0, 0, 0, false)
                        : g.start(type, (long) block * (BLOCK / 512), data, BLOCK, type == VirtioBlk.T_IN);
                submitted++;
                if (type != VirtioBlk.T_FLUSH) {
                    blockBusy[block] = true;
                    blockOfHead.put(p.head(), block);
                    dataOfHead.put(p.head(), data);
                    if (type == VirtioBlk.T_IN) {
                        expectedRead.put(p.head(), model[block].clone());
                    }
                }
                maxInFlight = Math.max(maxInFlight, ctx.inFlight());
            }
            ctx.flushBatch();
            ctx.reap();
            for (Done done : g.reapUsed()) {
                int head = done.posted().head();
                assertEquals(VirtioBlk.S_OK, done.status(), "head " + head);
                Integer block = blockOfHead.remove(head);
                if (block != null) {
                    long data = dataOfHead.remove(head);
                    if (done.posted().type() == VirtioBlk.T_IN) {
                        assertEquals(BLOCK + 1, done.usedLength());
                        assertArrayEquals(expectedRead.remove(head), g.bytes(data, BLOCK), "read of block " + block);
                    } else {
                        assertEquals(1, done.usedLength());
                    }
                    blockBusy[block] = false;
                    freeData.add(data);
                } else {
                    assertEquals(VirtioBlk.T_FLUSH, done.posted().type());
                }
            }
            if (submitted < total) {
                swaps++;
                switch (random.nextInt(6)) {
                    case 0 -> device.updateChain(c -> c.find("a").isPresent() ? c.without("a") : c.with(a, random.nextInt(3)));
                    case 1 -> device.updateChain(c -> {
                        if (c.find("b").isPresent()) {
                            return c.without("b");
                        }
                        b[0] = counting.apply("b"); // a fresh attachment, with fresh counters
                        allB.add(b[0]);
                        return c.with(b[0], random.nextInt(3));
                    });
                    case 2 -> device.updateChain(c -> c.find("flush").isPresent() ? c.without("flush") : c.with(flusher, -1));
                    case 3, 4 -> device.updateChain(c -> c.size() == 0 ? c
                            : c.moved(c.entries().get(random.nextInt(c.size())).name(), random.nextInt(c.size())));
                    default -> device.hooks(null);
                }
            }
        }
        assertTrue(maxInFlight >= 60, "kept the queue busy: at most " + maxInFlight + " in flight");
        assertTrue(swaps > 100, "swapped " + swaps + " times");
        assertEquals(total, g.submitted());
        assertEquals(total, g.completed());
        assertEquals(0, ctx.inFlight());
        assertEquals(List.of(), problems);
        Map<Integer, Integer> answers = new HashMap<>();
        for (int[] call : g.sinkCalls) {
            answers.merge(call[0], 1, Integer::sum);
        }
        assertEquals(total, answers.values().stream().mapToInt(Integer::intValue).sum(), "one answer per request");

        List<ChainEntry> all = new ArrayList<>(List.of(a, flusher));
        all.addAll(allB);
        for (ChainEntry e : all) {
            Expected x = expected.getOrDefault(e, new Expected());
            Map<String, Long> c = e.counters();
            String what = e.name() + " " + c;
            assertEquals(x.seen, c.get("seen"), what);
            assertEquals(x.passed, c.get("passed"), what);
            assertEquals(x.completed, c.get("completed"), what);
            assertEquals(x.bytes, c.get("bytes"), what);
            assertEquals(0, c.get("errors"), what);
            assertEquals(c.get("seen"), c.get("passed") + c.get("completed") + c.get("errors"), what);
            for (Counting h : hooksOf.getOrDefault(e, List.of())) {
                assertEquals(h.before, h.after, e.name() + ": every request it passed came back to it");
                assertEquals(Set.of(), h.passed);
            }
        }
        assertEquals(expected.get(flusher) == null ? 0 : expected.get(flusher).completed, flushTaken[0]);

        // Finally the disk holds the last write of every block.
        device.hooks(null);
        List<Posted> readBack = new ArrayList<>();
        for (int block = 0; block < blocks; block++) {
            long dst = freeData.get(block);
            g.ram.at(dst, BLOCK).fill((byte) 0xee);
            readBack.add(g.start(VirtioBlk.T_IN, (long) block * (BLOCK / 512), dst, BLOCK, true));
        }
        List<Done> last = g.loopUntil(() -> g.outstanding() == 0, 5_000);
        assertEquals(blocks, last.size());
        for (int block = 0; block < blocks; block++) {
            assertArrayEquals(model[block], g.bytes(readBack.get(block).data(), BLOCK), "block " + block);
        }
    }

    // ---- 7. counters ----

    @Test
    void countersCountWhatEachModuleSawPassedAndAnswered() throws Exception {
        device = openRecorded(g, "disk0");
        ChainEntry a = recorder("a");
        ChainEntry b = module("b", c -> r -> {
            if (r.op() == BlockOp.READ && r.offset() == 0) {
                Iov.write(r.data(), new byte[(int) r.length()]);
                r.result(r.length());
                return HookAction.COMPLETE;
            }
            return HookAction.PASS;
        });
        ChainEntry below = recorder("below");
        device.hooks(new HookChain(List.of(a, b, below)));
        long buf = g.buffer(2 * BLOCK, 0x12);
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_OUT, 8, buf, 2 * BLOCK, false).status());
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_IN, 8, buf, BLOCK, true).status());
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_IN, 0, buf, 512, true).status());
        assertEquals(VirtioBlk.S_OK, g.run(VirtioBlk.T_FLUSH, 0, 0, 0, false).status());

        assertEquals(Map.of("seen", 4L, "completed", 0L, "passed", 4L, "errors", 0L, "bytes", 2L * BLOCK + BLOCK + 512), a.counters());
        assertEquals(Map.of("seen", 4L, "completed", 1L, "passed", 3L, "errors", 0L, "bytes", 2L * BLOCK + BLOCK + 512), b.counters());
        assertEquals(Map.of("seen", 3L, "completed", 0L, "passed", 3L, "errors", 0L, "bytes", 2L * BLOCK + BLOCK), below.counters());
        assertEquals(List.of("seen", "completed", "passed", "errors", "bytes"), List.copyOf(a.counters().keySet()));
    }

    @Test
    void aFailedResultTheModuleReturnsCountsAsAnError() throws Exception {
        // HookCounters.errors: "Hook exceptions and failed results the module returned".
        device = openRecorded(g, "disk0");
        ChainEntry refuser = module("refuser", c -> r -> {
            if (r.op() == BlockOp.READ) {
                r.result(-Errno.EIO);
                return HookAction.COMPLETE;
            }
            return HookAction.PASS;
        });
        device.hooks(new HookChain(List.of(refuser)));
        assertEquals(VirtioBlk.S_IOERR, g.run(VirtioBlk.T_IN, 8, g.buffer(BLOCK, 0), BLOCK, true).status());
        assertEquals(List.of("refuser"), device.chain().names(), "a failed result is not a module failure");
        Map<String, Long> c = refuser.counters();
        assertEquals(1, c.get("seen"));
        assertEquals(1, c.get("completed"));
        assertEquals(1, c.get("errors"), "counters: " + c);
    }
}
