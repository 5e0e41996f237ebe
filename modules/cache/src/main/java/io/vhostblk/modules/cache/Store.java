package io.vhostblk.modules.cache;

import io.vhostblk.hooks.OwnRequests;

import java.lang.foreign.MemorySegment;

/**
 * A device the cache reads and writes asynchronously, addressed in bytes: the cache device (through the module's
 * own driver queue) or the layers beneath the module (through the hook's own requests). Calls and completions
 * happen on the owning queue's event loop; a completion may also run inside the call. Buffers stay the caller's
 * and untouched until the completion. A disk with a volatile write cache: {@link #flush} makes every write
 * completed before it durable.
 */
interface Store {

    /** A finished call: 0, or {@code -errno}. */
    @FunctionalInterface
    interface Done extends OwnRequests.Done {
    }

    void read(long offset, MemorySegment buffer, Done done);

    void write(long offset, MemorySegment buffer, Done done);

    void flush(Done done);

    /** DISCARD ({@code zeroes} false) or WRITE_ZEROES of a byte range. */
    void discard(long offset, long length, boolean zeroes, Done done);
}
