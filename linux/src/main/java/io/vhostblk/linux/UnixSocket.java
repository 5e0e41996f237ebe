package io.vhostblk.linux;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A connected AF_UNIX stream socket that can pass file descriptors ({@code SCM_RIGHTS}).
 *
 * <p>One thread reads and one thread writes at a time; {@link #shutdown()} and {@link #close()}
 * may be called from any thread. Received descriptors are close-on-exec
 * ({@code MSG_CMSG_CLOEXEC}) and belong to the caller.
 */
public final class UnixSocket implements AutoCloseable {
    /** The most descriptors one receive call accepts; more is reported as truncation. */
    public static final int MAX_FDS = 32;

    static final int AF_UNIX = 1;
    static final int SOCK_STREAM = 1;
    static final int SOCK_CLOEXEC = 02000000;
    static final int SHUT_RDWR = 2;
    static final int SOL_SOCKET = 1;
    static final int SCM_RIGHTS = 1;
    static final int MSG_CTRUNC = 0x8;
    static final int MSG_NOSIGNAL = 0x4000;
    static final int MSG_CMSG_CLOEXEC = 0x40000000;
    /** {@code sizeof(sun_path)}: the path and its terminating NUL must fit. */
    static final int SUN_PATH_SIZE = 108;
    static final int SOCKADDR_UN_SIZE = 2 + SUN_PATH_SIZE;

    /** {@code struct msghdr} on LP64 Linux. */
    static final StructLayout MSGHDR = MemoryLayout.structLayout(
            ADDRESS.withName("msg_name"), JAVA_INT.withName("msg_namelen"), MemoryLayout.paddingLayout(4),
            ADDRESS.withName("msg_iov"), JAVA_LONG.withName("msg_iovlen"),
            ADDRESS.withName("msg_control"), JAVA_LONG.withName("msg_controllen"),
            JAVA_INT.withName("msg_flags"), MemoryLayout.paddingLayout(4));
    private static final long MSG_IOV = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_iov"));
    private static final long MSG_IOVLEN = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_iovlen"));
    private static final long MSG_CONTROL = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_control"));
    private static final long MSG_CONTROLLEN = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_controllen"));
    private static final long MSG_FLAGS = MSGHDR.byteOffset(MemoryLayout.PathElement.groupElement("msg_flags"));
    /** {@code struct cmsghdr}: {@code size_t cmsg_len; int cmsg_level; int cmsg_type;} then data. */
    private static final long CMSG_HDR = 16;

    private final Object lock = new Object();
    private int fd;

    UnixSocket(int fd) {
        this.fd = fd;
    }

    /** Wraps a connected socket descriptor (for example one inherited with {@code --fd}); closing this closes it. */
    public static UnixSocket adopt(int fd) {
        return new UnixSocket(fd);
    }

    /** Connects to the listening socket at {@code path}. */
    public static UnixSocket connect(Path path) throws IOException {
        int fd = (int) Libc.check("socket", Libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "AF_UNIX");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddr(arena, path);
            int rc;
            do {
                rc = Libc.connect(fd, addr, SOCKADDR_UN_SIZE);
            } while (rc == -Errno.EINTR);
            Libc.check("connect", rc, path.toString());
            return new UnixSocket(fd);
        } catch (IOException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** A connected pair, both ends close-on-exec. */
    public static UnixSocket[] pair() throws LinuxException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sv = arena.allocate(JAVA_INT, 2);
            Libc.check("socketpair", Libc.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), "AF_UNIX");
            return new UnixSocket[] {new UnixSocket(sv.getAtIndex(JAVA_INT, 0)), new UnixSocket(sv.getAtIndex(JAVA_INT, 1))};
        }
    }

    /** Builds a {@code sockaddr_un} for {@code path}, refusing paths that do not fit {@code sun_path}. */
    static MemorySegment sockaddr(Arena arena, Path path) throws LinuxException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length >= SUN_PATH_SIZE) {
            throw new LinuxException("bind/connect", Errno.EINVAL,
                    "socket path is " + bytes.length + " bytes, must be 1.." + (SUN_PATH_SIZE - 1) + ": " + path);
        }
        MemorySegment addr = arena.allocate(SOCKADDR_UN_SIZE, 2);
        addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, addr, ValueLayout.JAVA_BYTE, 2, bytes.length);
        return addr;
    }

    /** The descriptor, or -1 once closed. */
    public int fd() {
        synchronized (lock) {
            return fd;
        }
    }

    /** The peer sent more descriptors than the receiver accepts (MSG_CTRUNC); those that arrived were closed. */
    public static final class TooManyFdsException extends IOException {
        TooManyFdsException(int maxFds) {
            super("recvmsg: peer sent more than " + maxFds + " file descriptors (ancillary data truncated); received ones closed");
        }
    }

    /** What one receive returned: the byte count (0 at end of stream) and the descriptors that came with it. */
    public record Received(long bytes, int[] fds) {
    }

    /**
     * One {@code recvmsg} into {@code buf} (EINTR retried), accepting up to {@code maxFds}
     * descriptors. If the peer sent more, every descriptor that did arrive is closed and a
     * {@link TooManyFdsException} reports the truncation (the kernel drops the rest).
     */
    public Received receive(MemorySegment buf, int maxFds) throws IOException {
        if (maxFds < 0 || maxFds > MAX_FDS) {
            throw new IllegalArgumentException("maxFds " + maxFds + " not in 0.." + MAX_FDS);
        }
        int sock = requireOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(Libc.IOVEC);
            iov.set(ADDRESS, 0, buf);
            iov.set(JAVA_LONG, 8, buf.byteSize());
            // Room for at least one descriptor so a peer sending fds where none are expected is
            // detected as truncation rather than silently dropped.
            long controlLen = cmsgSpace(Math.max(maxFds, 1) * 4L);
            MemorySegment control = arena.allocate(controlLen, 8);
            MemorySegment msg = arena.allocate(MSGHDR);
            msg.set(ADDRESS, MSG_IOV, iov);
            msg.set(JAVA_LONG, MSG_IOVLEN, 1L);
            msg.set(ADDRESS, MSG_CONTROL, control);
            msg.set(JAVA_LONG, MSG_CONTROLLEN, controlLen);
            long n;
            do {
                n = Libc.recvmsg(sock, msg, MSG_CMSG_CLOEXEC);
            } while (n == -Errno.EINTR);
            Libc.check("recvmsg", n, "unix socket fd " + sock);
            int[] fds = parseRights(control, msg.get(JAVA_LONG, MSG_CONTROLLEN));
            int flags = msg.get(JAVA_INT, MSG_FLAGS);
            if ((flags & MSG_CTRUNC) != 0 || fds.length > maxFds) {
                closeAll(fds);
                throw new TooManyFdsException(maxFds);
            }
            return new Received(n, fds);
        }
    }

    /**
     * Fills {@code buf} exactly, looping over partial reads and collecting descriptors from every
     * read (up to {@code maxFds} in total). Returns null on a clean end of stream before the
     * first byte; an end of stream after it is an {@link EOFException}. On any failure the
     * descriptors collected so far are closed.
     */
    public int[] receiveFully(MemorySegment buf, int maxFds) throws IOException {
        long size = buf.byteSize();
        long done = 0;
        int[] fds = new int[0];
        try {
            while (done < size) {
                Received r = receive(buf.asSlice(done), maxFds - fds.length);
                if (r.bytes() == 0) {
                    if (done == 0 && fds.length == 0 && r.fds().length == 0) {
                        return null;
                    }
                    closeAll(r.fds());
                    throw new EOFException("end of stream after " + done + " of " + size + " bytes");
                }
                if (r.fds().length > 0) {
                    int[] all = Arrays.copyOf(fds, fds.length + r.fds().length);
                    System.arraycopy(r.fds(), 0, all, fds.length, r.fds().length);
                    fds = all;
                }
                done += r.bytes();
            }
            return fds;
        } catch (IOException | RuntimeException e) {
            closeAll(fds);
            throw e;
        }
    }

    /** Fills {@code buf} exactly; descriptors are not expected here, and any that arrive are closed and refused. */
    public void readFully(MemorySegment buf) throws IOException {
        int[] fds = receiveFully(buf, 0);
        if (fds == null) {
            throw new EOFException("end of stream before any of " + buf.byteSize() + " bytes");
        }
    }

    /**
     * Sends all of {@code data}, the descriptors riding with the first byte (they are not
     * closed or transferred: the kernel duplicates them into the peer). Partial writes and EINTR
     * are retried; a vanished peer is {@code EPIPE}, never SIGPIPE.
     */
    public void send(MemorySegment data, int... fds) throws IOException {
        if (fds.length > MAX_FDS) {
            throw new IllegalArgumentException(fds.length + " descriptors, at most " + MAX_FDS);
        }
        int sock = requireOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment iov = arena.allocate(Libc.IOVEC);
            MemorySegment msg = arena.allocate(MSGHDR);
            msg.set(ADDRESS, MSG_IOV, iov);
            msg.set(JAVA_LONG, MSG_IOVLEN, 1L);
            if (fds.length > 0) {
                long controlLen = cmsgSpace(fds.length * 4L);
                MemorySegment control = arena.allocate(controlLen, 8);
                control.set(JAVA_LONG, 0, CMSG_HDR + fds.length * 4L);
                control.set(JAVA_INT, 8, SOL_SOCKET);
                control.set(JAVA_INT, 12, SCM_RIGHTS);
                MemorySegment.copy(fds, 0, control, JAVA_INT, CMSG_HDR, fds.length);
                msg.set(ADDRESS, MSG_CONTROL, control);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, controlLen);
            }
            long done = 0;
            long size = data.byteSize();
            do {
                iov.set(ADDRESS, 0, data.asSlice(done));
                iov.set(JAVA_LONG, 8, size - done);
                long n = Libc.sendmsg(sock, msg, MSG_NOSIGNAL);
                if (n == -Errno.EINTR) {
                    continue;
                }
                Libc.check("sendmsg", n, "unix socket fd " + sock + ", " + (size - done) + " bytes");
                done += n;
                // The descriptors went with the first chunk.
                msg.set(ADDRESS, MSG_CONTROL, MemorySegment.NULL);
                msg.set(JAVA_LONG, MSG_CONTROLLEN, 0L);
            } while (done < size);
        }
    }

    /**
     * Shuts both directions down, waking a thread blocked in a receive on this socket (it sees
     * end of stream). Safe from any thread; a no-op once closed.
     */
    public void shutdown() {
        synchronized (lock) {
            if (fd >= 0) {
                // ENOTCONN when the peer already went away is fine: the goal is only the wake-up.
                Libc.shutdown(fd, SHUT_RDWR);
            }
        }
    }

    /** Closes the descriptor; idempotent. Call {@link #shutdown()} first if another thread may be blocked on it. */
    @Override
    public void close() {
        synchronized (lock) {
            if (fd >= 0) {
                Libc.close(fd);
                fd = -1;
            }
        }
    }

    private int requireOpen() throws LinuxException {
        synchronized (lock) {
            if (fd < 0) {
                throw new LinuxException("unix socket", Errno.EBADF, "socket is closed");
            }
            return fd;
        }
    }

    static long cmsgSpace(long dataLen) {
        return CMSG_HDR + ((dataLen + 7) & ~7L);
    }

    /** Collects every SCM_RIGHTS descriptor in a received control buffer of {@code len} bytes. */
    private static int[] parseRights(MemorySegment control, long len) {
        int[] fds = new int[0];
        long off = 0;
        while (off + CMSG_HDR <= len) {
            long cmsgLen = control.get(JAVA_LONG, off);
            if (cmsgLen < CMSG_HDR || off + cmsgLen > len) {
                break;
            }
            if (control.get(JAVA_INT, off + 8) == SOL_SOCKET && control.get(JAVA_INT, off + 12) == SCM_RIGHTS) {
                int n = (int) ((cmsgLen - CMSG_HDR) / 4);
                int base = fds.length;
                fds = Arrays.copyOf(fds, base + n);
                MemorySegment.copy(control, JAVA_INT, off + CMSG_HDR, fds, base, n);
            }
            off += (cmsgLen + 7) & ~7L;
        }
        return fds;
    }

    /** Closes every descriptor in {@code fds} (received ones nobody took). */
    public static void closeAll(int[] fds) {
        if (fds != null) {
            for (int f : fds) {
                Libc.close(f);
            }
        }
    }
}
