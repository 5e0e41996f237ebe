package io.vhostblk.modules.reduce;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.HookContext;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

/**
 * The volume's backing store while it serves: each call becomes one of the hook's own requests sent to the layers
 * beneath ({@link HookContext#newRequest}, {@link HookContext#submitBelow}). Used on the owning queue's event loop
 * only. Requests are pooled: the pool grows to the most ever in flight and is reused, so steady-state I/O
 * allocates nothing here.
 */
final class HookBackingStore implements BackingStore {

    private final HookContext context;
    private final long size;
    private final ArrayDeque<Io> free = new ArrayDeque<>();
    /** Punches (DISCARD below) that failed; the space stays allocated. */
    long punchFailures;

    HookBackingStore(HookContext context, long size) {
        this.context = context;
        this.size = size;
    }

    /** One request below and whom to tell when it is done. */
    private final class Io implements DriverCompletion {
        final BlockRequest request = context.newRequest();
        final IoVector data = new IoVector(1);
        IoCompletion done;
        /** Bytes a READ or WRITE must move; 0 for FLUSH, -1 for a punch. */
        long expected;

        @Override
        public void complete(BlockRequest r, long result) {
            IoCompletion d = done;
            long want = expected;
            done = null;
            free.push(this);
            if (want < 0) {
                // A punch that failed (a layer that cannot deallocate) costs space, never data: the volume never
                // reads freed blocks.
                punchFailures += result < 0 ? 1 : 0;
                d.complete(Errno.OK);
                return;
            }
            // A short transfer is an I/O error for the volume: it never asks for less than it needs.
            d.complete(result < 0 ? (int) result : want == 0 || result == want ? Errno.OK : Errno.EIO);
        }
    }

    private Io take(IoCompletion done, long expected) {
        Io io = free.isEmpty() ? new Io() : free.pop();
        io.done = done;
        io.expected = expected;
        return io;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        transfer(BlockOp.READ, offset, buffer, done);
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        transfer(BlockOp.WRITE, offset, buffer, done);
    }

    private void transfer(BlockOp op, long offset, MemorySegment buffer, IoCompletion done) {
        long n = buffer.byteSize();
        Io io = take(done, n);
        io.request.set(op, offset, n, io.data.wrap(buffer, 0, n, op == BlockOp.READ), false);
        context.submitBelow(io.request, io);
    }

    @Override
    public void flush(IoCompletion done) {
        Io io = take(done, 0);
        io.request.set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false);
        context.submitBelow(io.request, io);
    }

    /** A DISCARD with unmap below: the file driver punches the hole. */
    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        Io io = take(done, -1);
        io.request.set(BlockOp.DISCARD, offset, length, IoVector.NONE, true);
        context.submitBelow(io.request, io);
    }

    @Override
    public void close() {
        // The requests belong to the hook context; nothing to release.
    }
}
