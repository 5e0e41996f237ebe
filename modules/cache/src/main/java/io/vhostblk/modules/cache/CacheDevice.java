package io.vhostblk.modules.cache;

import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.OwnRequests;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The {@code cache} module on one device: one cache shared by all the device's queues, served on the loop of the
 * first queue opened (so its slots, policy and slot table need no locks), with a pacer thread that asks that loop
 * to write back and commit every {@link #TICK_MILLIS} ms.
 */
final class CacheDevice implements ModuleInstance {

    private static final System.Logger LOG = System.getLogger(CacheDevice.class.getName());
    static final int TICK_MILLIS = 10;

    final String label;
    private final CacheEngine engine;
    private final CacheDeviceIo io;
    private final String cacheFile;
    private final CopyOnWriteArrayList<CacheHook> queues = new CopyOnWriteArrayList<>();
    private volatile CacheHook owner;
    private volatile boolean closed;
    private final AtomicBoolean tickQueued = new AtomicBoolean();
    /** Queue indexes opened in the current connection (guarded by this). */
    private final java.util.Set<Integer> openedQueues = new java.util.HashSet<>();
    private final boolean paced;
    private final CacheEngine.TableWriter tableWriter;
    private Thread pacer;

    /** {@code paced}: start the pacer thread (tests drive {@link CacheEngine#tick} themselves). */
    CacheDevice(String label, CacheEngine engine, CacheDeviceIo io, String cacheFile, boolean paced,
                CacheEngine.TableWriter tableWriter) {
        this.label = label;
        this.tableWriter = tableWriter;
        this.paced = paced;
        this.engine = engine;
        this.io = io;
        this.cacheFile = cacheFile;
    }

    CacheHook owner() {
        return owner;
    }

    CacheEngine engine() {
        return engine;
    }

    /**
     * A hook for a queue. The first queue of a connection owns the cache. A queue index opened a second time means
     * the front-end reconnected: every loop of the old connection has stopped (with nothing left in flight), so a
     * new generation starts and its first queue becomes the owner, with the cache device's queue on its loop.
     */
    @Override
    public synchronized BlockHook openQueue(HookContext context) {
        int index = context.queueIndex();
        if (openedQueues.contains(index)) {
            openedQueues.clear();
            owner = null;
            tickQueued.set(false); // a tick posted to the old owner's loop never runs
        }
        openedQueues.add(index);
        boolean owns = owner == null;
        CacheHook h = new CacheHook(this, engine, context, owns);
        if (owns) {
            RequestStore below = new RequestStore(OwnRequests.below(context));
            engine.serveOn(io.open(context), below);
            owner = h;
            if (paced && pacer == null) {
                pacer = Thread.ofPlatform().daemon().name("vhost-blk-" + context.device().deviceId() + "-cache-pacer")
                        .start(this::pace);
            }
            LOG.log(System.Logger.Level.INFO, label + ": cache served on queue " + index
                    + "; other queues hand their requests to it");
        }
        queues.add(h);
        return h;
    }

    /** Asks the owner loop for a write-back and commit round every tick (one at a time: a stopped loop gets one). */
    private void pace() {
        while (!closed) {
            try {
                Thread.sleep(TICK_MILLIS);
            } catch (InterruptedException e) {
                return;
            }
            if (tickQueued.compareAndSet(false, true)) {
                owner.context.execute(() -> {
                    tickQueued.set(false);
                    engine.tick();
                });
            }
        }
    }

    @Override
    public int logicalBlockSize() {
        return engine.header.blockSize();
    }

    /** A write-back cache holds the only copy of its dirty blocks: going on without it would serve stale data. */
    @Override
    public boolean failClosed() {
        return engine.writeBackCache;
    }

    @Override
    public Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        long hits = engine.hits;
        long misses = engine.misses;
        int bs = engine.header.blockSize();
        m.put("mode", engine.mode.word);
        m.put("cache_file", cacheFile);
        m.put("block_size", bs);
        m.put("slots", engine.slots());
        m.put("resident_blocks", engine.residentBlocks());
        m.put("hits", hits);
        m.put("misses", misses);
        m.put("hit_ratio", hits + misses == 0 ? 0.0 : (double) hits / (hits + misses));
        m.put("dirty_bytes", (long) engine.dirtyBlocks() * bs);
        m.put("written_back_bytes", engine.writtenBackBytes);
        m.put("writeback_bytes_per_second", engine.writebackRate);
        m.put("writeback_errors", engine.writebackErrors);
        m.put("evictions", engine.evictions);
        m.put("fills", engine.fills);
        m.put("commits", engine.commits);
        long handed = 0;
        for (CacheHook h : queues) {
            handed += h.handedOver;
        }
        m.put("requests_handed_over", handed);
        return m;
    }

    /**
     * Before {@code ctl disable}: a write-back cache switches to write-through (no new dirty block), then writes back
     * every dirty block and commits (flushing the layers below), on the owner loop while the guest keeps running.
     * Fails if a write-back or the commit fails; cancelled (the server gave up), it goes back to write-back.
     */
    @Override
    public CompletableFuture<Void> prepareDetach() {
        CacheHook o = owner;
        if (!engine.writeBackCache || o == null) {
            return CompletableFuture.completedFuture(null); // nothing dirty can exist, or no queue ever ran it
        }
        if (io.ownerStopped()) {
            // No loop runs the cache (the front-end is gone): nothing could write back, and a guest that reconnects
            // to a chain without the cache would read stale data under its dirty blocks.
            return engine.dirtyBlocks() == 0 ? CompletableFuture.completedFuture(null)
                    : CompletableFuture.failedFuture(new CacheException("no queue serves the cache now (no front-end "
                    + "connected), so its " + engine.dirtyBlocks() + " dirty blocks cannot be written back; connect "
                    + "the guest and disable again, or stop the device and run vhost-blk cache flush"));
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        o.context.execute(() -> {
            if (done.isDone()) {
                return;
            }
            LOG.log(System.Logger.Level.INFO, label + ": preparing to detach: write-through from now on; writing back "
                    + engine.dirtyBlocks() + " dirty blocks");
            engine.writeThrough();
            engine.drain(rc -> {
                if (rc == 0) {
                    LOG.log(System.Logger.Level.INFO, label + ": every dirty block written back and flushed below; "
                            + "ready to detach");
                    done.complete(null);
                } else {
                    engine.writeBackAgain();
                    done.completeExceptionally(new CacheException("writing back before detach failed: errno " + -rc
                            + "; " + engine.dirtyBlocks() + " dirty blocks left; the cache stays, in write-back mode"));
                }
            });
        });
        done.whenComplete((v, e) -> {
            if (done.isCancelled()) {
                o.context.execute(() -> {
                    engine.stopDrain();
                    engine.writeBackAgain();
                    LOG.log(System.Logger.Level.INFO, label + ": detach given up; write-back mode again, "
                            + engine.dirtyBlocks() + " dirty blocks");
                });
            }
        });
        return done;
    }

    /**
     * Detached: a write-back cache first writes back every dirty block and commits (on the owner loop, while it
     * still runs; after {@link #prepareDetach} nothing is left); then the cache device is closed. If the loop no
     * longer runs (the device is stopping), the dirty blocks stay on the cache device, safe: they are written back
     * when it is attached again, or by {@code vhost-blk cache flush}.
     */
    /** The device stopped (its queues are gone): commit the table directly, keeping every dirty block. */
    private void closeStopped() {
        try {
            engine.commitStopped(tableWriter);
            LOG.log(System.Logger.Level.INFO, label + ": the queues have stopped; " + engine.dirtyBlocks() + " dirty blocks "
                    + "stay on " + cacheFile + ", committed, and are written back when it is attached again (or with: "
                    + "vhost-blk cache flush " + cacheFile + " IMAGE)");
        } catch (java.io.IOException e) {
            LOG.log(System.Logger.Level.ERROR, label + ": the last commit of the slot table on " + cacheFile + " failed: "
                    + e.getMessage() + "; writes since the last guest FLUSH may be lost");
        }
    }

    @Override
    public void close() {
        CacheHook o = owner;
        boolean stopped = o != null && io.ownerStopped();
        if (stopped && engine.writeBackCache) {
            closeStopped();
        } else if (o != null && engine.writeBackCache) {
            CountDownLatch running = new CountDownLatch(1);
            CountDownLatch drained = new CountDownLatch(1);
            o.context.execute(() -> {
                running.countDown();
                engine.writeThrough();
                engine.drain(rc -> drained.countDown());
            });
            try {
                if (!running.await(2, TimeUnit.SECONDS)) {
                    closeStopped();
                } else {
                    while (!drained.await(10, TimeUnit.SECONDS)) {
                        LOG.log(System.Logger.Level.INFO, label + ": writing back before detach, " + engine.dirtyBlocks()
                                + " dirty blocks left");
                    }
                    LOG.log(System.Logger.Level.INFO, label + ": every dirty block written back");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        closed = true;
        Thread p = pacer;
        if (p != null) {
            p.interrupt();
        }
        if (o != null && (stopped || io.ownerStopped())) {
            io.close(null); // the loop closed the cache device's queue; only the driver is left
        } else if (o != null) {
            CountDownLatch shut = new CountDownLatch(1);
            o.context.execute(() -> {
                io.close(o.context);
                shut.countDown();
            });
            try {
                if (!shut.await(2, TimeUnit.SECONDS)) {
                    LOG.log(System.Logger.Level.INFO, label + ": the queue no longer runs; it closes the cache device's queue");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (o == null) {
            io.close(null);
        }
        engine.close();
        LOG.log(System.Logger.Level.INFO, label + ": detached");
    }
}
