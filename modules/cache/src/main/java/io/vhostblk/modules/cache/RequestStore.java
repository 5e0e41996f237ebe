package io.vhostblk.modules.cache;

import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.hooks.OwnRequests;

import java.lang.foreign.MemorySegment;

/**
 * A {@link Store} whose calls become the module's own pooled requests ({@link OwnRequests}): sent below through the
 * hook context, or to the cache device's own driver queue.
 */
final class RequestStore implements Store {

    private final OwnRequests requests;

    RequestStore(OwnRequests requests) {
        this.requests = requests;
    }

    /** The completion handler to give a driver queue: finds the call by the request's slot. */
    DriverCompletion completions() {
        return requests.bySlot();
    }

    @Override
    public void read(long offset, MemorySegment buffer, Done done) {
        requests.read(offset, buffer, done);
    }

    @Override
    public void write(long offset, MemorySegment buffer, Done done) {
        requests.write(offset, buffer, done);
    }

    @Override
    public void flush(Done done) {
        requests.flush(done);
    }

    @Override
    public void discard(long offset, long length, boolean zeroes, Done done) {
        if (zeroes) {
            requests.writeZeroes(offset, length, done);
        } else {
            requests.discard(offset, length, done);
        }
    }
}
