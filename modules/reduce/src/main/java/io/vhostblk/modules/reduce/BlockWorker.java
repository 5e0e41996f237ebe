package io.vhostblk.modules.reduce;

import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A thread that fingerprints and compresses blocks for one volume while the queue's loop keeps polling. The loop
 * hands tasks over through {@link #execute} (its {@code worker} executor); the tasks hand their results back through
 * {@link #toLoop()}, and the worker posts them to the loop in batches: one loop wake-up ({@code post}) per batch the
 * worker finished, not one per block. Both directions are single-producer single-consumer rings of the engine's
 * preallocated tasks, so nothing is allocated or locked per block.
 */
final class BlockWorker implements Executor, AutoCloseable {

    private static final System.Logger LOG = System.getLogger(BlockWorker.class.getName());

    private final String name;
    private final Ring in;
    private final Ring out;
    /** Runs a task on the volume's loop (the owner queue's {@code HookContext.execute}). */
    private final Executor post;
    /** True from a post until the loop starts draining: a batch needs one wake-up, not one per result. */
    private final AtomicBoolean posted = new AtomicBoolean();
    private final Runnable drain = this::drainOnLoop;
    private final Thread thread;
    private volatile boolean sleeping;
    private volatile boolean closed;

    /**
     * @param capacity the most tasks ever in flight at once (the volume's block operations)
     * @param post     runs a task on the volume's loop, callable from any thread
     */
    BlockWorker(String name, int capacity, Executor post) {
        this.name = name;
        this.in = new Ring(capacity);
        this.out = new Ring(capacity);
        this.post = post;
        this.thread = Thread.ofPlatform().daemon().name(name).unstarted(this::run);
        thread.start();
    }

    /** On the loop: queues a task for the worker thread. */
    @Override
    public void execute(Runnable task) {
        in.push(task);
        if (sleeping) {
            LockSupport.unpark(thread);
        }
    }

    /** The executor the tasks hand their results to (on the worker thread); they run on the loop. */
    Executor toLoop() {
        return out::push;
    }

    private void run() {
        while (!closed) {
            Runnable task = in.poll();
            if (task != null) {
                runSafely(task);
                continue;
            }
            postResults();
            sleeping = true;
            if (in.isEmpty() && !closed) {
                LockSupport.park(this);
            }
            sleeping = false;
        }
    }

    private void runSafely(Runnable task) {
        try {
            task.run(); // the engine's task catches its own failures and reports them on the loop
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, name + ": a block task failed outside the engine's handling", e);
        }
    }

    /** The worker ran out of tasks: wakes the loop once for everything it finished. */
    private void postResults() {
        if (!out.isEmpty() && !posted.getAndSet(true)) {
            post.execute(drain);
        }
    }

    private void drainOnLoop() {
        posted.set(false); // before draining: a result pushed after this point posts again
        Runnable r;
        while ((r = out.poll()) != null) {
            r.run();
        }
    }

    /** Stops the thread once it is idle; tasks still queued are dropped (the volume is closing). */
    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(thread);
    }

    /** A bounded single-producer single-consumer ring of tasks. */
    private static final class Ring {
        private final Runnable[] slots;
        private final int mask;
        private final AtomicLong head = new AtomicLong(); // next to take; written by the consumer
        private final AtomicLong tail = new AtomicLong(); // next to fill; written by the producer

        Ring(int capacity) {
            int size = Integer.highestOneBit(Math.max(2, capacity) - 1) << 1;
            slots = new Runnable[size];
            mask = size - 1;
        }

        void push(Runnable task) {
            long t = tail.get();
            if (t - head.get() == slots.length) {
                // The engine never has more block operations in flight than the ring holds.
                throw new IllegalStateException("block worker ring full (" + slots.length + ")");
            }
            slots[(int) t & mask] = task;
            tail.set(t + 1); // a full fence: the worker's "sleeping" check after this sees a consistent ring
        }

        Runnable poll() {
            long h = head.get();
            if (h == tail.get()) {
                return null;
            }
            Runnable task = slots[(int) h & mask];
            slots[(int) h & mask] = null;
            head.setRelease(h + 1);
            return task;
        }

        boolean isEmpty() {
            return head.get() == tail.get();
        }
    }
}
