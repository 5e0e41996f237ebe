package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;

import static org.junit.jupiter.api.Assertions.fail;

/** Helpers for driver tests: iovec arrays, waiting on a queue, per-thread allocation counts. */
final class TestIo {
    private TestIo() {
    }

    /** Request data over the given buffers (device-writable, so that one vector serves reads and writes). */
    static IoVector iov(Arena arena, MemorySegment... bufs) {
        IoVector v = new IoVector(bufs.length, arena).clear(true);
        for (MemorySegment b : bufs) {
            v.add(b, 0, b.byteSize());
        }
        return v;
    }

    /** Reaps until the queue has nothing in flight, sleeping on its completion fd in between. */
    static void drain(DriverQueue q, MemorySegment pollFd) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        q.reap();
        while (q.inFlight() > 0) {
            if (System.nanoTime() > deadline) {
                fail("queue still has " + q.inFlight() + " requests in flight after 30 s");
            }
            pollFd.set(ValueLayout.JAVA_INT, 0, q.completionFd());
            pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollFd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
            int rc = Libc.poll(pollFd, 1, 1000);
            if (rc < 0 && rc != -Errno.EINTR) {
                fail("poll on the completion fd failed: " + Errno.describe(-rc));
            }
            q.reap();
        }
    }

    /** Bytes allocated so far by the calling thread. */
    static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }
}
