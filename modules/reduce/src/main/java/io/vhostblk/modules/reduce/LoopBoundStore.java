package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.Executor;

/**
 * Forwards every call to the thread that owns a backing store (through {@code loop}, for example the queue's
 * event-loop executor), so {@link ReduceVolume#open}, which waits for its I/O, can run on a setup thread while the
 * store itself is only ever used on its loop. Completions arrive on the loop. Once the volume is open and handed
 * to the loop, {@link #serveDirectly} makes calls go straight through (they are then on the loop already), so
 * requests pay no hand-off.
 */
public final class LoopBoundStore implements BackingStore {

    private final BackingStore store;
    private final Executor loop;
    private volatile boolean direct;

    public LoopBoundStore(BackingStore store, Executor loop) {
        this.store = store;
        this.loop = loop;
    }

    /** From now on calls come from the loop itself: no hand-off. */
    public void serveDirectly() {
        direct = true;
    }

    @Override
    public long size() {
        return store.size();
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        if (direct) {
            store.read(offset, buffer, done);
        } else {
            loop.execute(() -> store.read(offset, buffer, done));
        }
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        if (direct) {
            store.write(offset, buffer, done);
        } else {
            loop.execute(() -> store.write(offset, buffer, done));
        }
    }

    @Override
    public void flush(IoCompletion done) {
        if (direct) {
            store.flush(done);
        } else {
            loop.execute(() -> store.flush(done));
        }
    }

    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        if (direct) {
            store.deallocate(offset, length, done);
        } else {
            loop.execute(() -> store.deallocate(offset, length, done));
        }
    }

    @Override
    public void close() {
        store.close();
    }
}
