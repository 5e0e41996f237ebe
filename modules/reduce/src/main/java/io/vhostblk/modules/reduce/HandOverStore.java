package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;

/**
 * The store a served volume is opened on: first the image file itself (so opening, with its recovery and new
 * checkpoint, runs on the setup thread before any guest request, and the module knows the logical size when the
 * chain is built), then, once the owning queue's hook exists, the layers beneath the module through
 * {@link HookBackingStore}. Handing over happens on that queue's loop before its first request.
 */
final class HandOverStore implements BackingStore {

    private final long size;
    private BackingStore current;

    HandOverStore(BackingStore opening) {
        this.current = opening;
        this.size = opening.size();
    }

    /**
     * The volume is open (its writes flushed): closes the file on the thread that opened it (the file store's
     * memory is confined to that thread). Until {@link #handOver} a call fails with EIO: nothing may reach the
     * volume before its queue exists.
     */
    void openingDone() {
        BackingStore old = current;
        current = NOT_SERVING;
        old.close();
    }

    /** From now on the volume's I/O goes through {@code next} (called on the owning queue's loop). */
    void handOver(BackingStore next) {
        current = next;
    }

    private static final BackingStore NOT_SERVING = new BackingStore() {
        @Override
        public long size() {
            return 0;
        }

        @Override
        public void read(long offset, MemorySegment buffer, IoCompletion done) {
            done.complete(Errno.EIO);
        }

        @Override
        public void write(long offset, MemorySegment buffer, IoCompletion done) {
            done.complete(Errno.EIO);
        }

        @Override
        public void flush(IoCompletion done) {
            done.complete(Errno.EIO);
        }

        @Override
        public void deallocate(long offset, long length, IoCompletion done) {
            done.complete(Errno.EIO);
        }

        @Override
        public void close() {
        }
    };

    @Override
    public long size() {
        return size;
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
