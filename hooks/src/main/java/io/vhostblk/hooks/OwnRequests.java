package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.function.Supplier;

/**
 * A module's own I/O (block maps, metadata, a cache device) as pooled {@link BlockRequest}s: each read, write, flush,
 * discard or write-zeroes of a byte range becomes one request, sent through a {@link Sender} and reported to a
 * {@link Done}. The pool grows to the most requests ever in flight and is reused, so steady-state I/O allocates
 * nothing. Not thread-safe: call it, and let its requests complete, on one event loop.
 */
public final class OwnRequests {

    /** {@code errno} of a short transfer: the module never asks for less than it needs. */
    private static final int EIO = 5;

    /** Sends one request; its result comes back through the given completion. */
    @FunctionalInterface
    public interface Sender {
        void send(BlockRequest request, DriverCompletion done);
    }

    /** A finished call: 0, or {@code -errno}. */
    @FunctionalInterface
    public interface Done {
        void complete(int result);
    }

    private final Supplier<BlockRequest> requests;
    private final Sender sender;
    private final ArrayDeque<Io> free = new ArrayDeque<>();
    /** Every request made, by slot, for a driver queue that reports completions by request ({@link #bySlot}). */
    private Io[] slots = new Io[16];

    /** Requests from {@code requests} (made when the pool grows), sent with {@code sender}. */
    public OwnRequests(Supplier<BlockRequest> requests, Sender sender) {
        this.requests = requests;
        this.sender = sender;
    }

    /** The hook's own requests to the layers beneath it ({@link HookContext#newRequest}, {@link HookContext#submitBelow}). */
    public static OwnRequests below(HookContext context) {
        return new OwnRequests(context::newRequest, context::submitBelow);
    }

    /** One request and whom to tell when it is done. */
    private final class Io implements DriverCompletion {
        final BlockRequest request = requests.get();
        final IoVector data = new IoVector(1);
        Done done;
        /** Bytes a READ or WRITE must move; 0 for the others. */
        long expected;

        @Override
        public void complete(BlockRequest r, long result) {
            Done d = done;
            long want = expected;
            done = null;
            free.push(this);
            d.complete(result < 0 ? (int) result : want == 0 || result == want ? 0 : -EIO);
        }
    }

    /**
     * The completion handler for a driver queue the module opened itself, which reports completions by request:
     * finds the call by the request's slot.
     */
    public DriverCompletion bySlot() {
        return (r, result) -> slots[r.slot()].complete(r, result);
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
            if (slot >= slots.length) {
                slots = Arrays.copyOf(slots, Math.max(slot + 1, slots.length * 2));
            }
            slots[slot] = io;
        }
        return io;
    }

    /** Reads {@code buffer.byteSize()} bytes at {@code offset}; a short read is {@code -EIO}. */
    public void read(long offset, MemorySegment buffer, Done done) {
        transfer(BlockOp.READ, offset, buffer, done);
    }

    /** Writes all of {@code buffer} at {@code offset}; a short write is {@code -EIO}. */
    public void write(long offset, MemorySegment buffer, Done done) {
        transfer(BlockOp.WRITE, offset, buffer, done);
    }

    private void transfer(BlockOp op, long offset, MemorySegment buffer, Done done) {
        long n = buffer.byteSize();
        Io io = take(done, n);
        io.request.set(op, offset, n, io.data.wrap(buffer, 0, n, op == BlockOp.READ), false);
        sender.send(io.request, io);
    }

    /** Makes every write completed before it durable. */
    public void flush(Done done) {
        send(BlockOp.FLUSH, 0, 0, false, done);
    }

    /** A DISCARD that may deallocate (a file driver punches the hole). */
    public void discard(long offset, long length, Done done) {
        send(BlockOp.DISCARD, offset, length, true, done);
    }

    /** A WRITE_ZEROES; the range stays allocated. */
    public void writeZeroes(long offset, long length, Done done) {
        send(BlockOp.WRITE_ZEROES, offset, length, false, done);
    }

    private void send(BlockOp op, long offset, long length, boolean unmap, Done done) {
        Io io = take(done, 0);
        io.request.set(op, offset, length, IoVector.NONE, unmap);
        sender.send(io.request, io);
    }
}
