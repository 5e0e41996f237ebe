package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;

/**
 * Waits for a backing-store operation, for the places that are allowed to wait: format, open (before the volume
 * serves) and the offline tools. Never used on a request path.
 */
final class Blocking implements IoCompletion {

    private final CountDownLatch latch = new CountDownLatch(1);
    private volatile int result;

    @Override
    public void complete(int r) {
        result = r;
        latch.countDown();
    }

    private int await() throws ReduceException {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ReduceException("interrupted while waiting for the backing store", e);
        }
        return result;
    }

    private static void check(int r, String what, long offset, long length) throws ReduceException {
        if (r < 0) {
            throw new ReduceException(what + " of " + length + " bytes at offset " + offset + " failed: " + Errno.name(r));
        }
    }

    static void read(BackingStore store, long offset, MemorySegment buffer) throws ReduceException {
        Blocking b = new Blocking();
        store.read(offset, buffer, b);
        check(b.await(), "read", offset, buffer.byteSize());
    }

    static void write(BackingStore store, long offset, MemorySegment buffer) throws ReduceException {
        Blocking b = new Blocking();
        store.write(offset, buffer, b);
        check(b.await(), "write", offset, buffer.byteSize());
    }

    static void flush(BackingStore store) throws ReduceException {
        Blocking b = new Blocking();
        store.flush(b);
        check(b.await(), "flush", 0, 0);
    }
}
