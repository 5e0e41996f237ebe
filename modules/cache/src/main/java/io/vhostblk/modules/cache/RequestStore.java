package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.function.Supplier;

/**
 * A {@link Store} whose calls become {@link BlockRequest}s: sent below through the hook context, or to the cache
 * device's own driver queue. Requests are pooled (the pool grows to the most ever in flight and is reused), so
 * steady-state I/O allocates nothing.
 */
final class RequestStore implements Store {

    /** Sends one request; its result comes back through the given completion. */
    @FunctionalInterface
    interface Sender {
        void send(BlockRequest request, DriverCompletion done);
    }

    private final Supplier<BlockRequest> requests;
    private final Sender sender;
    private final ArrayDeque<Io> free = new ArrayDeque<>();
    /** Every request made, by slot, for a driver queue that reports completions by request ({@link #completions}). */
    private Io[] bySlot = new Io[16];

    RequestStore(Supplier<BlockRequest> requests, Sender sender) {
        this.requests = requests;
        this.sender = sender;
    }

    /** One request and whom to tell when it is done. */
    private final class Io implements DriverCompletion {
        final BlockRequest request = requests.get();
        final IoVector data = new IoVector(1);
        Done done;
        long expected;

        @Override
        public void complete(BlockRequest r, long result) {
            Done d = done;
            long want = expected;
            done = null;
            free.push(this);
            // A short transfer is an error for the cache: it never asks for less than it needs.
            d.complete(result < 0 ? (int) result : want == 0 || result == want ? Errno.OK : -Errno.EIO);
        }
    }

    /** The completion handler to give a driver queue: finds the call by the request's slot. */
    DriverCompletion completions() {
        return (r, result) -> bySlot[r.slot()].complete(r, result);
    }

    private Io take(Done done, long expected) {
        Io io = free.isEmpty() ? newIo() : free.pop();
        io.done = done;
        io.expected = expected;
        return io;
    }

    private Io newIo() {
        Io io = new Io();
        int slot = io.request.slot();
        if (slot >= 0 && slot < 1 << 20) {
            if (slot >= bySlot.length) {
                bySlot = java.util.Arrays.copyOf(bySlot, Math.max(slot + 1, bySlot.length * 2));
            }
            bySlot[slot] = io;
        }
        return io;
    }

    @Override
    public void read(long offset, MemorySegment buffer, Done done) {
        transfer(BlockOp.READ, offset, buffer, done);
    }

    @Override
    public void write(long offset, MemorySegment buffer, Done done) {
        transfer(BlockOp.WRITE, offset, buffer, done);
    }

    private void transfer(BlockOp op, long offset, MemorySegment buffer, Done done) {
        long n = buffer.byteSize();
        Io io = take(done, n);
        io.request.set(op, offset, n, io.data.wrap(buffer, 0, n, op == BlockOp.READ), false);
        sender.send(io.request, io);
    }

    @Override
    public void flush(Done done) {
        Io io = take(done, 0);
        io.request.set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false);
        sender.send(io.request, io);
    }

    @Override
    public void discard(long offset, long length, boolean zeroes, Done done) {
        Io io = take(done, 0);
        io.request.set(zeroes ? BlockOp.WRITE_ZEROES : BlockOp.DISCARD, offset, length, IoVector.NONE, !zeroes);
        sender.send(io.request, io);
    }
}
