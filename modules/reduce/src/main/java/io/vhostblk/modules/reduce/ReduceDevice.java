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
    private final ReduceModules.Geometry geometry;
    private final long deviceCapacity;
    /** Set on the owner's loop once the volume is open (read by report from the control thread). */
    private volatile ReduceVolume volume;
    /** Why the volume could not be opened; every request then fails. */
    private volatile String openFailure;
    /** The size beneath the module, as the chain last told it ({@link #capacity}). */
    private volatile long sizeBelow;
    private volatile boolean closed;
    /** The features asked for, applied when the volume opens. */
    private ReduceVolume.Options options;
    private final Job[] jobs = new Job[JOBS];
    private final Arena arena = Arena.ofShared();
    private final ArrayDeque<Job> freeJobs = new ArrayDeque<>();
    private final ArrayDeque<BlockRequest> waiting = new ArrayDeque<>();
    private final ArrayDeque<ReduceHook> waitingFrom = new ArrayDeque<>();
    private final CopyOnWriteArrayList<ReduceHook> queues = new CopyOnWriteArrayList<>();
    final Set<String> names = new CopyOnWriteArraySet<>();
    private volatile ReduceHook owner;
    private volatile HookBackingStore below;
    /** What the volume writes through: the current owner queue's {@link HookBackingStore}. */
    private final OwnerStore store = new OwnerStore();
    /** Counts of queues that stopped, so the report keeps them. */
    private long stoppedRequests;
    private long stoppedHandedOver;
    private volatile boolean opening;
    private long waited;
    private long waitedForOpen;
    /** Hashes and compresses blocks off the owner's loop, or null: everything runs on the loop. */
    private final BlockWorker worker;

    ReduceDevice(String key, DeviceInfo device, String name, ReduceModules.Geometry geometry, ReduceVolume.Options options,
                 boolean useWorker) {
        this.key = key;
        this.worker = useWorker ? new BlockWorker("vhost-blk-" + device.vmName() + "-" + device.deviceId() + "-reduce",
                options.maxBlockOps(), this::postToOwner) : null;
        this.label = "vm=" + device.vmName() + " device=" + device.deviceId() + " module=" + name;
        this.geometry = geometry;
        this.deviceCapacity = device.capacity();
        this.options = options;
        names.add(name);
        // The jobs go to work when the volume is open; until then every request waits in order.
        for (int i = 0; i < JOBS; i++) {
            jobs[i] = new Job(arena.allocate(CHUNK, 4096));
        }
    }

    ReduceHook owner() {
        return owner;
    }

    /** The other name joins: its feature is switched on, on the owner's loop if the volume already serves. */
    void join(String name, boolean dedup, boolean compress) {
        names.add(name);
        ReduceVolume.Options now;
        synchronized (this) {
            options = options.withDedup(options.dedup() || dedup).withCompress(options.compress() || compress);
            now = options;
        }
        ReduceVolume v = volume;
        ReduceHook o = owner;
        if (v != null && o != null) {
            o.context.execute(() -> v.enable(dedup, compress));
        }
        LOG.log(System.Logger.Level.INFO, label + ": module " + name + " joins the volume: " + now);
    }

    private synchronized ReduceVolume.Options options() {
        return options;
    }

    /**
     * The first queue to open owns the volume: its backing I/O goes below through this queue, and the other queues
     * hand their requests to it. When the owner's queue stops (the front-end disconnected), the next queue to open
     * takes over.
     */
    @Override
    public synchronized BlockHook openQueue(HookContext context) {
        ReduceHook o = owner;
        boolean owns = o == null;
        ReduceHook h = new ReduceHook(this, context, owns);
        if (owns) {
            long size = sizeBelow > 0 ? sizeBelow : deviceCapacity;
            below = new HookBackingStore(context, size);
            store.current = below;
            owner = h;
            LOG.log(System.Logger.Level.INFO, label + ": volume " + (volume == null ? "opens and " : "") + "is served on queue "
                    + context.queueIndex() + " (" + size + " bytes beneath); other queues hand their requests to it");
            if (volume == null && openFailure == null && !opening) {
                opening = true;
                // Not from inside openQueue: the queue is still building its chain.
                context.execute(this::startOpening);
            }
        }
        queues.add(h);
        return h;
    }

    /** {@code h}'s queue stopped (its loop has exited); if it served the volume, the next queue to open will. */
    synchronized void queueStopped(ReduceHook h) {
        queues.remove(h);
        stoppedRequests += h.requests;
        stoppedHandedOver += h.handedOver;
        // Its requests still waiting or in progress are served, but their results go nowhere (ReduceHook.finish).
        h.stopped = true;
        if (owner != h) {
            return;
        }
        owner = null;
        ReduceVolume v = volume;
        if (v == null) {
            // The open's I/O went to the stopped queue and will never complete: the next owner starts it again.
            opening = false;
        } else if (v.busy() && openFailure == null) {
            openFailure = "queue " + h.context.queueIndex() + ", which served the volume, stopped with the volume's own I/O "
                    + "in flight; restart the device";
            LOG.log(System.Logger.Level.ERROR, label + ": " + openFailure);
            return;
        }
        LOG.log(System.Logger.Level.INFO, label + ": queue " + h.context.queueIndex()
                + " stopped; the next queue to open serves the volume");
    }

    /** The volume's backing store: the owner queue's requests below, whichever queue owns it now. */
    private static final class OwnerStore implements BackingStore {
        volatile HookBackingStore current;

        @Override
        public long size() {
            return current.size();
        }

        @Override
        public void read(long offset, MemorySegment buffer, IoCompletion done) {
            current.read(offset, buffer, done);
        }

        @Override
        public void write(long offset, MemorySegment buffer, IoCompletion done) {
            current.write(offset, buffer, done);
        }

        @Override
        public void flush(IoCompletion done) {
            current.flush(done);
        }

        @Override
        public void deallocate(long offset, long length, IoCompletion done) {
            current.deallocate(offset, length, done);
        }

        @Override
        public void close() {
            // The requests belong to the queues' hook contexts.
        }
    }

    /**
     * Runs a task of the {@link #worker} on the owner's loop. With no owner (its queue stopped) the task is dropped:
     * the volume then had block operations in flight, and the device fails ({@link #queueStopped}).
     */
    private void postToOwner(Runnable task) {
        ReduceHook o = owner;
        if (o != null) {
            o.context.execute(task);
        }
    }

    /** On the owner's loop: opens the volume through the layers beneath; requests wait for it. */
    private void startOpening() {
        ReduceVolume.open(store, label, options(), worker, worker == null ? null : worker.toLoop(), new ReduceVolume.Opened() {
            @Override
            public void opened(ReduceVolume v) {
                if (closed) {
                    v.close();
                    return;
                }
                if (v.logicalSize() != geometry.logicalBytes() || v.blockSize() != geometry.blockSize()) {
                    v.close();
                    failed(new ReduceException(label + ": the volume has " + v.logicalSize() + " logical bytes in blocks of "
                            + v.blockSize() + " B, but the guest was shown " + geometry.logicalBytes() + " in blocks of "
                            + geometry.blockSize() + " (from the " + geometry.source() + ")"));
                    return;
                }
                ReduceVolume.Options o = options();
                v.enable(o.dedup(), o.compress());
                volume = v;
                opening = false;
                LOG.log(System.Logger.Level.INFO, label + ": volume " + v.uuid() + " open, " + v.options() + ", hashing and "
                        + "compression " + (worker == null ? "on the loop" : "on a worker thread") + "; " + waiting.size()
                        + " requests waited for it");
                for (Job j : jobs) {
                    release(j);
                }
            }

            @Override
            public void failed(ReduceException e) {
                opening = false;
                openFailure = e.getMessage();
                LOG.log(System.Logger.Level.ERROR, label + ": cannot open the volume, every request fails with EIO: "
                        + e.getMessage());
                BlockRequest r;
                while ((r = waiting.poll()) != null) {
                    waitingFrom.poll().finish(r, BlockResult.EIO);
                }
            }
        });
    }

    /** On the owner's loop: start {@code r} now, or queue it until a job is free (or the volume is open). */
    void serve(BlockRequest r, ReduceHook from) {
        if (openFailure != null) {
            from.finish(r, BlockResult.EIO);
            return;
        }
        Job j = freeJobs.poll();
        if (j == null) {
            if (volume == null) {
                waitedForOpen++;
            } else {
                waited++;
            }
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
        sizeBelow = capacityBelow;
        return geometry.logicalBytes();
    }

    /** The logical size was fixed at format; growing the image would not grow the guest's disk. */
    @Override
    public boolean allowsResize() {
        return false;
    }

    /** The volume's block: smaller writes would cost a read-modify-write of a whole block. */
    @Override
    public int logicalBlockSize() {
        return geometry.blockSize();
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
        ReduceVolume v = volume;
        String failure = openFailure;
        m.put("state", v != null ? "serving" : failure != null ? "failed to open: " + failure : "opening");
        ReduceVolume.Options o = v != null ? v.options() : options();
        m.put("dedup", o.dedup());
        m.put("compress", o.compress());
        m.put("worker", worker != null);
        if (v != null) {
            m.putAll(v.report());
        }
        long requests;
        long handed;
        synchronized (this) {
            requests = stoppedRequests;
            handed = stoppedHandedOver;
        }
        for (ReduceHook h : queues) {
            requests += h.requests;
            handed += h.handedOver;
        }
        m.put("requests", requests);
        m.put("requests_handed_over", handed);
        m.put("requests_waited_for_a_job", waited);
        m.put("requests_waited_for_the_volume_to_open", waitedForOpen);
        HookBackingStore b = below;
        m.put("punch_failures", b == null ? 0L : b.punchFailures);
        return m;
    }

    /** Detached: the volume is closed; unflushed writes are lost as on a disk without a FLUSH. */
    @Override
    public void close() {
        closed = true;
        ReduceModules.forget(this);
        ReduceVolume v = volume;
        if (v != null) {
            v.close();
        }
        if (worker != null) {
            worker.close();
        }
        if (v == null || !v.busy()) {
            arena.close();
        }
        LOG.log(System.Logger.Level.INFO, label + ": detached, volume closed");
    }
}
