package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.OwnRequests;

import java.lang.foreign.MemorySegment;

/**
 * The volume's backing store while it serves: each call becomes one of the hook's own pooled requests sent to the
 * layers beneath ({@link OwnRequests#below}). Used on the owning queue's event loop only.
 */
final class HookBackingStore implements BackingStore {

    private final OwnRequests requests;
    private final long size;
    /** Punches (DISCARD below) that failed; the space stays allocated. */
    long punchFailures;

    HookBackingStore(HookContext context, long size) {
        this.requests = OwnRequests.below(context);
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        requests.read(offset, buffer, done);
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        requests.write(offset, buffer, done);
    }

    @Override
    public void flush(IoCompletion done) {
        requests.flush(done);
    }

    /** A DISCARD with unmap below: the file driver punches the hole. Rare (commits), so its completion may allocate. */
    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        requests.discard(offset, length, result -> {
            // A punch that failed (a layer that cannot deallocate) costs space, never data: the volume never reads
            // freed blocks.
            punchFailures += result < 0 ? 1 : 0;
            done.complete(Errno.OK);
        });
    }

    @Override
    public void close() {
        // The requests belong to the hook context; nothing to release.
    }
}
