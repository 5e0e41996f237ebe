package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;

/**
 * The device a reduce volume lives on, addressed in bytes: the layer beneath the module (a file, or what the
 * module's child requests reach). Asynchronous: each call returns at once and reports through its
 * {@link IoCompletion}, either inside the call or later, but always on the volume's own thread and never while
 * another call into the volume is running on another thread. Buffers belong to the volume and stay untouched
 * by it until the completion.
 *
 * <p>Semantics are those of a disk with a volatile write cache: a completed write may still be lost or reordered
 * with other unflushed writes by a crash; {@link #flush} makes every write completed before it durable.
 */
public interface BackingStore extends AutoCloseable {

    /** The usable size in bytes. */
    long size();

    /** Reads {@code buffer.byteSize()} bytes at {@code offset} into {@code buffer}. */
    void read(long offset, MemorySegment buffer, IoCompletion done);

    /** Writes all of {@code buffer} at {@code offset}. */
    void write(long offset, MemorySegment buffer, IoCompletion done);

    /** Makes every write completed before this call durable. */
    void flush(IoCompletion done);

    /**
     * Gives the space of a byte range back (punch a hole); afterwards the range reads as zeros. Stores that
     * cannot deallocate complete successfully without doing anything: the volume never reads freed space.
     */
    void deallocate(long offset, long length, IoCompletion done);

    @Override
    void close();
}
