package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;

/**
 * The store a served volume is opened on: first the image file itself (so opening, with its recovery and new
 * checkpoint, runs on the setup thread before any guest request, and the module knows the logical size when the
 * chain is built), then, once the owning queue's hook exists, the layers beneath the module through
 * {@link HookBackingStore}. Handing over happens on that queue's loop before its first request.
 */
final class HandOverStore implements BackingStore {

    private BackingStore current;

    HandOverStore(BackingStore opening) {
        this.current = opening;
    }

    /** Closes the opening store (its writes were flushed by the open) and serves through {@code next}. */
    void handOver(BackingStore next) {
        BackingStore old = current;
        current = next;
        old.close();
    }

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
        current.close();
    }
}
