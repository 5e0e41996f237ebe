package io.vhostblk.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An eventfd used as a doorbell (vring kick and call, stop signals). Owns an 8-byte buffer so
 * signalling and draining allocate nothing; one instance is used by one thread at a time for
 * reads, while {@link #signal()} may be called from any thread.
 */
public final class EventFd implements AutoCloseable {
    private final int fd;
    private final boolean owned;
    private final MemorySegment readBuf;
    private final ThreadLocal<MemorySegment> writeBuf;

    private EventFd(int fd, boolean owned) {
        this.fd = fd;
        this.owned = owned;
        Arena arena = Arena.ofAuto();
        this.readBuf = arena.allocate(8);
        this.writeBuf = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(8));
    }

    /** Creates a new close-on-exec eventfd. */
    public static EventFd create(boolean nonBlocking) throws LinuxException {
        int fd = (int) Libc.check("eventfd", Libc.eventfd(0, Libc.EFD_CLOEXEC | (nonBlocking ? Libc.EFD_NONBLOCK : 0)), "");
        return new EventFd(fd, true);
    }

    /** Wraps an eventfd received from a peer; closing this closes the fd. */
    public static EventFd adopt(int fd) {
        return new EventFd(fd, true);
    }

    public int fd() {
        return fd;
    }

    /** Adds one to the counter; returns 0 or {@code -errno}. */
    public int signal() {
        MemorySegment b = writeBuf.get();
        b.set(ValueLayout.JAVA_LONG, 0, 1L);
        long rc = Libc.write(fd, b, 8);
        return rc < 0 ? (int) rc : 0;
    }

    /**
     * Makes reads of this eventfd non-blocking (O_NONBLOCK on its open file description, which a
     * peer that passed it shares; eventfd writes never block on it in practice). Returns 0 or
     * {@code -errno}.
     */
    public int makeNonBlocking() {
        int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
        if (flags < 0 || (flags & Libc.O_NONBLOCK) != 0) {
            return Math.min(flags, 0);
        }
        return Math.min(Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK), 0);
    }

    /** Reads and resets the counter; returns the count, or {@code -errno} (EAGAIN when non-blocking and zero). */
    public long drain() {
        long rc = Libc.read(fd, readBuf, 8);
        return rc < 0 ? rc : readBuf.get(ValueLayout.JAVA_LONG, 0);
    }

    @Override
    public void close() {
        if (owned) {
            Libc.close(fd);
        }
    }
}
