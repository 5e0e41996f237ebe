package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;

/**
 * A cache engine over two {@link SimDisk}s (the cache device and the layers below) with helpers that play guest
 * requests of whole blocks filled with one byte value.
 */
final class Rig {
    static final int BS = 4096;

    final CacheEngine engine;
    final SimDisk cache;
    final SimDisk below;
    final CacheHeader header;
    final List<Runnable> pending;
    private int nextSlot;

    /** A guest request in flight and, once done, its result. */
    static final class Guest implements CacheEngine.Origin {
        final BlockRequest request;
        final MemorySegment buffer;
        boolean done;
        long result;

        Guest(BlockRequest request, MemorySegment buffer) {
            this.request = request;
            this.buffer = buffer;
        }

        @Override
        public void finish(BlockRequest r, long res) {
            if (done) {
                throw new AssertionError(r + " completed twice");
            }
            done = true;
            result = res;
        }

        /** The value every byte of block {@code i} of the read holds, or -1 if they differ. */
        int value(int i) {
            byte v = buffer.get(ValueLayout.JAVA_BYTE, (long) i * BS);
            for (long at = 0; at < BS; at++) {
                if (buffer.get(ValueLayout.JAVA_BYTE, (long) i * BS + at) != v) {
                    return -1;
                }
            }
            return v & 0xff;
        }
    }

    /** A freshly formatted cache of {@code slots} blocks over a volume of {@code blocks} blocks. */
    static Rig fresh(int slots, long blocks, CacheEngine.Mode mode, SimDisk.Power power, List<Runnable> pending) {
        CacheHeader h = new CacheHeader(BS, slots, blocks * BS, UUID.randomUUID(), "test-volume");
        SimDisk cache = new SimDisk(h.slotOffset(slots), power, pending);
        MemorySegment.copy(MemorySegment.ofArray(h.encode()), 0, cache.current, 0, CacheHeader.SIZE);
        cache.flush(rc -> { });
        runAll(pending);
        SimDisk below = new SimDisk(blocks * BS, power, pending);
        return new Rig(h, null, mode, cache, below, pending);
    }

    /** The cache reopened from what two disks hold (after a crash, say). */
    static Rig reopen(MemorySegment cacheImage, MemorySegment belowImage, CacheEngine.Mode mode, SimDisk.Power power,
                      List<Runnable> pending) throws CacheException {
        CacheHeader h = CacheHeader.decode(cacheImage.asSlice(0, CacheHeader.SIZE).toArray(ValueLayout.JAVA_BYTE), "sim");
        byte[] table = cacheImage.asSlice(h.metadataOffset(), h.metadataBytes()).toArray(ValueLayout.JAVA_BYTE);
        return new Rig(h, table, mode, new SimDisk(cacheImage, power, pending), new SimDisk(belowImage, power, pending), pending);
    }

    private Rig(CacheHeader h, byte[] table, CacheEngine.Mode mode, SimDisk cache, SimDisk below, List<Runnable> pending) {
        this.header = h;
        this.cache = cache;
        this.below = below;
        this.pending = pending;
        engine = new CacheEngine(h, table, mode, 1 << 30, "test");
        engine.serveOn(cache, below);
    }

    private static void runAll(List<Runnable> pending) {
        while (pending != null && !pending.isEmpty()) {
            pending.removeFirst().run();
        }
    }

    /** Completes pending disk operations (in random order with {@code random}, else in order) until none is left. */
    void settle(Random random) {
        while (pending != null && !pending.isEmpty()) {
            int i = random == null ? 0 : random.nextInt(pending.size());
            pending.remove(i).run();
        }
    }

    Guest submit(BlockOp op, long block, int count, int value) {
        long bytes = (long) count * BS;
        MemorySegment buf = Arena.ofAuto().allocate(Math.max(bytes, 1), 4096);
        IoVector data = IoVector.NONE;
        if (op == BlockOp.WRITE) {
            buf.fill((byte) value);
            data = new IoVector(1).wrap(buf, 0, bytes, false);
        } else if (op == BlockOp.READ) {
            data = new IoVector(1).wrap(buf, 0, bytes, true);
        }
        BlockRequest r = new BlockRequest(nextSlot++, "d", 0);
        r.set(op, op == BlockOp.FLUSH ? 0 : block * BS, op == BlockOp.FLUSH ? 0 : bytes, data, op == BlockOp.DISCARD);
        Guest g = new Guest(r, buf);
        engine.serve(r, g);
        return g;
    }

    Guest write(long block, int count, int value) {
        return submit(BlockOp.WRITE, block, count, value);
    }

    Guest read(long block, int count) {
        return submit(BlockOp.READ, block, count, 0);
    }

    Guest flush() {
        return submit(BlockOp.FLUSH, 0, 0, 0);
    }

    /** Runs a request to its end (settling the disks) and checks it succeeded. */
    Guest done(Guest g) {
        settle(null);
        if (!g.done) {
            throw new AssertionError(g.request + " did not complete");
        }
        if (g.result < 0) {
            throw new AssertionError(g.request + " failed: " + g.result);
        }
        return g;
    }

    /** The value every byte of {@code block} holds below, or -1 if they differ. */
    int belowValue(long block) {
        byte v = below.current.get(ValueLayout.JAVA_BYTE, block * BS);
        for (long at = 0; at < BS; at++) {
            if (below.current.get(ValueLayout.JAVA_BYTE, block * BS + at) != v) {
                return -1;
            }
        }
        return v & 0xff;
    }

    /** Writes back everything and commits (detach), settling the disks. */
    void drain() {
        boolean[] drained = {false};
        engine.drain(rc -> {
            if (rc < 0) {
                throw new AssertionError("drain failed: errno " + -rc);
            }
            drained[0] = true;
        });
        for (int i = 0; i < 1000 && !drained[0]; i++) {
            settle(null);
            engine.tick();
        }
        if (!drained[0]) {
            throw new AssertionError("drain did not finish; dirty blocks " + engine.dirtyBlocks());
        }
    }

    static List<Runnable> deferred() {
        return new ArrayList<>();
    }
}
