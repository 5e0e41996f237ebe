package io.vhostblk.modules.reduce;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.BlockResult;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CopyOnWriteArraySet;

/**
 * The reduce volume of one device, as the module instance of the first of {@code dedup} / {@code compress} the
 * policy names (the other name joins it: {@link ReduceModules}). Guest requests run as {@link Job}s on the owner
 * queue's loop: data is copied between the guest's {@code IoVector} and a job's buffer, in chunks for large
 * requests, and the volume's backing I/O goes below as the owner hook's own requests.
 */
final class ReduceDevice implements ModuleInstance {

    private static final System.Logger LOG = System.getLogger(ReduceDevice.class.getName());
    /** Jobs in progress at once; more requests wait in order. */
    static final int JOBS = 32;
    /** A job's buffer: larger requests are served in pieces of this size, one after the other. */
    static final int CHUNK = 128 * 1024;

    final String label;
    final String key;
    private final ReduceVolume volume;
    private final HandOverStore store;
    private final Arena arena = Arena.ofShared();
    private final ArrayDeque<Job> freeJobs = new ArrayDeque<>();
    private final ArrayDeque<BlockRequest> waiting = new ArrayDeque<>();
    private final ArrayDeque<ReduceHook> waitingFrom = new ArrayDeque<>();
    private final CopyOnWriteArrayList<ReduceHook> queues = new CopyOnWriteArrayList<>();
    final Set<String> names = new CopyOnWriteArraySet<>();
    private volatile ReduceHook owner;
    private volatile HookBackingStore below;
    private long waited;

    ReduceDevice(String key, DeviceInfo device, String name, ReduceVolume volume, HandOverStore store) {
        this.key = key;
        this.label = "vm=" + device.vmName() + " device=" + device.deviceId() + " module=" + name;
        this.volume = volume;
        this.store = store;
        names.add(name);
        for (int i = 0; i < JOBS; i++) {
            freeJobs.add(new Job(arena.allocate(CHUNK, 4096)));
        }
    }

    ReduceVolume volume() {
        return volume;
    }

    ReduceHook owner() {
        return owner;
    }

    /** The other name joins: its feature is switched on, on the owner's loop if the volume already serves. */
    void join(String name, boolean dedup, boolean compress) {
        names.add(name);
        ReduceHook o = owner;
        if (o == null) {
            volume.enable(dedup, compress);
        } else {
            o.context.execute(() -> volume.enable(dedup, compress));
        }
        LOG.log(System.Logger.Level.INFO, label + ": module " + name + " joins the volume: " + volume.options());
    }

    /** The first queue to open owns the volume: from now on its backing I/O goes below through this queue. */
    @Override
    public synchronized BlockHook openQueue(HookContext context) {
        ReduceHook o = owner;
        boolean owns = o == null;
        ReduceHook h = new ReduceHook(this, context, owns);
        if (owns) {
            below = new HookBackingStore(context, store.size());
            store.handOver(below);
            owner = h;
            LOG.log(System.Logger.Level.INFO, label + ": volume served on queue " + context.queueIndex()
                    + "; other queues hand their requests to it");
        }
        queues.add(h);
        return h;
    }

    /** On the owner's loop: start {@code r} now, or queue it until a job is free. */
    void serve(BlockRequest r, ReduceHook from) {
        Job j = freeJobs.poll();
        if (j == null) {
            waited++;
            waiting.add(r);
            waitingFrom.add(from);
            return;
        }
        j.start(r, from);
    }

    private void release(Job j) {
        BlockRequest next = waiting.poll();
        if (next == null) {
            freeJobs.push(j);
        } else {
            j.start(next, waitingFrom.poll());
        }
    }

    /** One guest request on its way through the volume. */
    private final class Job implements IoCompletion {
        private final MemorySegment buffer;
        private BlockRequest request;
        private ReduceHook from;
        private long done;
        private long piece;

        Job(MemorySegment buffer) {
            this.buffer = buffer;
        }

        void start(BlockRequest r, ReduceHook h) {
            request = r;
            from = h;
            done = 0;
            piece = 0;
            switch (r.op()) {
                case FLUSH -> volume.flush(this);
                case DISCARD -> volume.discard(r.offset(), r.length(), this);
                case WRITE_ZEROES -> volume.writeZeroes(r.offset(), r.length(), this);
                case READ, WRITE -> {
                    if (r.length() <= 0 || r.data().length() < r.length()) {
                        end(BlockResult.EINVAL);
                        return;
                    }
                    next();
                }
            }
        }

        /** The next piece of a READ or WRITE. */
        private void next() {
            BlockRequest r = request;
            piece = Math.min(CHUNK, r.length() - done);
            MemorySegment slice = buffer.asSlice(0, piece);
            if (r.op() == BlockOp.WRITE) {
                r.data().copyTo(done, buffer, 0, piece); // read the guest's data; never write it
                volume.write(r.offset() + done, slice, this);
            } else {
                volume.read(r.offset() + done, slice, this);
            }
        }

        @Override
        public void complete(int result) {
            BlockRequest r = request;
            if (result < 0) {
                end(result);
                return;
            }
            if (r.op() != BlockOp.READ && r.op() != BlockOp.WRITE) {
                end(0);
                return;
            }
            if (r.op() == BlockOp.READ) {
                r.data().copyFrom(buffer, 0, done, piece);
            }
            done += piece;
            if (done < r.length()) {
                next();
            } else {
                end(r.length());
            }
        }

        private void end(long result) {
            BlockRequest r = request;
            ReduceHook h = from;
            request = null;
            from = null;
            release(this);
            h.finish(r, result);
        }
    }

    /** The volume's size: the guest sees the logical size, the metadata and data area stay hidden. */
    @Override
    public long capacity(long capacityBelow) {
        return volume.logicalSize();
    }

    /** The logical size was fixed at format; growing the image would not grow the guest's disk. */
    @Override
    public boolean allowsResize() {
        return false;
    }

    /** The volume's block: smaller writes would cost a read-modify-write of a whole block. */
    @Override
    public int logicalBlockSize() {
        return volume.blockSize();
    }

    /** The image is a block map, not the guest's disk: without the module the guest would see the metadata. */
    @Override
    public boolean failClosed() {
        return true;
    }

    @Override
    public Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("modules", String.join(", ", names));
        m.put("dedup", volume.options().dedup());
        m.put("compress", volume.options().compress());
        m.putAll(volume.report());
        long requests = 0;
        long handed = 0;
        for (ReduceHook h : queues) {
            requests += h.requests;
            handed += h.handedOver;
        }
        m.put("requests", requests);
        m.put("requests_handed_over", handed);
        m.put("requests_waited_for_a_job", waited);
        HookBackingStore b = below;
        m.put("punch_failures", b == null ? 0L : b.punchFailures);
        return m;
    }

    /** Detached: the volume and its file are closed; unflushed writes are lost as on a disk without a FLUSH. */
    @Override
    public void close() {
        ReduceModules.forget(this);
        volume.close();
        store.close();
        if (!volume.busy()) {
            arena.close();
        }
        LOG.log(System.Logger.Level.INFO, label + ": detached, volume closed");
    }
}
