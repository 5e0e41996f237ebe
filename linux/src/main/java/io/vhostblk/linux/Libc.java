package io.vhostblk.linux;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The C library's system-call wrappers, bound through the FFM API.
 *
 * <p>Every call returns what the kernel returned, with a failure as {@code -errno} (the raw
 * system-call convention), so hot paths can branch on it without an exception or an allocation;
 * {@link #check} turns a failure into a {@link LinuxException} where a failure is exceptional.
 * errno is captured per thread in a segment allocated once per thread.
 */
public final class Libc {
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_TRUNC = 01000;
    public static final int O_NONBLOCK = 04000;
    public static final int O_DIRECT = 040000;
    public static final int O_CLOEXEC = 02000000;

    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_POPULATE = 0x8000;

    public static final int FALLOC_FL_KEEP_SIZE = 0x01;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;

    public static final int EFD_NONBLOCK = 04000;
    public static final int EFD_CLOEXEC = 02000000;
    public static final int MFD_CLOEXEC = 1;

    public static final short POLLIN = 0x1;
    public static final short POLLERR = 0x8;
    public static final short POLLHUP = 0x10;
    public static final short POLLNVAL = 0x20;

    public static final int SEEK_SET = 0;
    public static final int SEEK_END = 2;

    /** {@code struct iovec}: base pointer and length. */
    public static final StructLayout IOVEC = MemoryLayout.structLayout(
            ADDRESS.withName("iov_base"), JAVA_LONG.withName("iov_len"));
    /** {@code struct pollfd}: fd, events, revents. */
    public static final StructLayout POLLFD = MemoryLayout.structLayout(
            JAVA_INT.withName("fd"), ValueLayout.JAVA_SHORT.withName("events"),
            ValueLayout.JAVA_SHORT.withName("revents"));

    static final Linker LINKER = Linker.nativeLinker();
    static final SymbolLookup LOOKUP = LINKER.defaultLookup();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ThreadLocal<MemorySegment> CALL_STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE));

    private static final AddressLayout PTR = ADDRESS;
    private static final MethodHandle OPEN = bind("open", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_INT, JAVA_INT));
    private static final MethodHandle CLOSE = bind("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle READ = bind("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG));
    private static final MethodHandle WRITE = bind("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG));
    private static final MethodHandle PREAD = bind("pread64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle PWRITE = bind("pwrite64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle PREADV = bind("preadv64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_INT, JAVA_LONG));
    private static final MethodHandle PWRITEV = bind("pwritev64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_INT, JAVA_LONG));
    private static final MethodHandle FDATASYNC = bind("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FSYNC = bind("fsync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FALLOCATE = bind("fallocate64", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle FTRUNCATE = bind("ftruncate64", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle LSEEK = bind("lseek64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MMAP = bind("mmap64", FunctionDescriptor.of(PTR, PTR, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = bind("munmap", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_LONG));
    private static final MethodHandle EVENTFD = bind("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle POLL = bind("poll", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_LONG, JAVA_INT));
    private static final MethodHandle MEMFD_CREATE = bind("memfd_create", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_INT));
    private static final MethodHandle FCNTL = bind("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL = bind("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, PTR),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle GETPID = LINKER.downcallHandle(
            LOOKUP.find("getpid").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
    // AF_UNIX sockets (UnixSocket, UnixServerSocket).
    private static final MethodHandle SOCKET = bind("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle SOCKETPAIR = bind("socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, PTR));
    private static final MethodHandle BIND = bind("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, PTR, JAVA_INT));
    private static final MethodHandle LISTEN = bind("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle ACCEPT4 = bind("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, PTR, PTR, JAVA_INT));
    private static final MethodHandle CONNECT = bind("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, PTR, JAVA_INT));
    private static final MethodHandle SENDMSG = bind("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_INT));
    private static final MethodHandle RECVMSG = bind("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_INT));
    private static final MethodHandle SHUTDOWN = bind("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));

    private Libc() {
    }

    /** Binds a libc function whose errno is captured into the per-thread call-state segment. */
    static MethodHandle bind(String name, FunctionDescriptor descriptor, Linker.Option... extra) {
        Linker.Option[] options = new Linker.Option[extra.length + 1];
        options[0] = Linker.Option.captureCallState("errno");
        System.arraycopy(extra, 0, options, 1, extra.length);
        MemorySegment symbol = LOOKUP.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    /** The calling thread's errno capture segment, passed as the first argument of bound handles. */
    static MemorySegment callState() {
        return CALL_STATE.get();
    }

    /** The errno the last bound call on this thread left in its capture segment. */
    static int lastErrno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** Converts a C return value to the raw convention: the value itself, or {@code -errno} on -1. */
    static long result(long rc, MemorySegment state) {
        return rc == -1 ? -lastErrno(state) : rc;
    }

    /** Throws a {@link LinuxException} for a negative raw result, else returns it. */
    public static long check(String call, long rc, String context) throws LinuxException {
        if (rc < 0) {
            throw new LinuxException(call, (int) -rc, context);
        }
        return rc;
    }

    static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("native call failed", t);
    }

    public static int open(String path, int flags, int mode) {
        MemorySegment st = callState();
        try (Arena arena = Arena.ofConfined()) {
            return (int) result((int) OPEN.invokeExact(st, arena.allocateFrom(path), flags, mode), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int close(int fd) {
        MemorySegment st = callState();
        try {
            return (int) result((int) CLOSE.invokeExact(st, fd), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static long read(int fd, MemorySegment buf, long len) {
        MemorySegment st = callState();
        try {
            return result((long) READ.invokeExact(st, fd, buf, len), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static long write(int fd, MemorySegment buf, long len) {
        MemorySegment st = callState();
        try {
            return result((long) WRITE.invokeExact(st, fd, buf, len), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static long pread(int fd, MemorySegment buf, long len, long offset) {
        MemorySegment st = callState();
        try {
            return result((long) PREAD.invokeExact(st, fd, buf, len, offset), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static long pwrite(int fd, MemorySegment buf, long len, long offset) {
        MemorySegment st = callState();
        try {
            return result((long) PWRITE.invokeExact(st, fd, buf, len, offset), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code preadv}: {@code iov} holds {@code count} {@link #IOVEC} entries. */
    public static long preadv(int fd, MemorySegment iov, int count, long offset) {
        MemorySegment st = callState();
        try {
            return result((long) PREADV.invokeExact(st, fd, iov, count, offset), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code pwritev}: {@code iov} holds {@code count} {@link #IOVEC} entries. */
    public static long pwritev(int fd, MemorySegment iov, int count, long offset) {
        MemorySegment st = callState();
        try {
            return result((long) PWRITEV.invokeExact(st, fd, iov, count, offset), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static final int F_GETFL = 3;
    public static final int F_SETFL = 4;

    /** {@code fcntl(fd, cmd, arg)} with an int argument (F_GETFL, F_SETFL); the result or {@code -errno}. */
    public static int fcntl(int fd, int cmd, int arg) {
        MemorySegment st = callState();
        try {
            return (int) result((int) FCNTL.invokeExact(st, fd, cmd, arg), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int fdatasync(int fd) {
        MemorySegment st = callState();
        try {
            return (int) result((int) FDATASYNC.invokeExact(st, fd), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int fsync(int fd) {
        MemorySegment st = callState();
        try {
            return (int) result((int) FSYNC.invokeExact(st, fd), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int fallocate(int fd, int mode, long offset, long length) {
        MemorySegment st = callState();
        try {
            return (int) result((int) FALLOCATE.invokeExact(st, fd, mode, offset, length), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int ftruncate(int fd, long length) {
        MemorySegment st = callState();
        try {
            return (int) result((int) FTRUNCATE.invokeExact(st, fd, length), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * Whether the file behind {@code fd} is shorter than {@code end} bytes. mmap accepts a length
     * past the end of a file, but touching those pages raises SIGBUS in this process, so every
     * mapping of a descriptor a front-end sent is checked first. A file whose size cannot be
     * learned (lseek fails, e.g. a device node) is left to the kernel.
     */
    public static boolean endsBefore(int fd, long end) {
        long size = lseek(fd, 0, SEEK_END);
        return size >= 0 && Long.compareUnsigned(end, size) > 0;
    }

    public static long lseek(int fd, long offset, int whence) {
        MemorySegment st = callState();
        try {
            return result((long) LSEEK.invokeExact(st, fd, offset, whence), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /**
     * {@code mmap}; on success the returned segment spans {@code length} bytes. The mapping is
     * not tied to an arena: the caller unmaps it with {@link #munmap}.
     */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset) throws LinuxException {
        MemorySegment st = callState();
        MemorySegment p;
        try {
            p = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (p.address() == -1L) {
            throw new LinuxException("mmap", lastErrno(st), "length " + length + ", fd " + fd + ", offset " + offset);
        }
        return p.reinterpret(length);
    }

    public static int munmap(MemorySegment mapping) {
        MemorySegment st = callState();
        try {
            return (int) result((int) MUNMAP.invokeExact(st, mapping, mapping.byteSize()), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int eventfd(int initval, int flags) {
        MemorySegment st = callState();
        try {
            return (int) result((int) EVENTFD.invokeExact(st, initval, flags), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code poll}: {@code fds} holds {@code count} {@link #POLLFD} entries. */
    public static int poll(MemorySegment fds, int count, int timeoutMillis) {
        MemorySegment st = callState();
        try {
            return (int) result((int) POLL.invokeExact(st, fds, (long) count, timeoutMillis), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int memfdCreate(String name, int flags) {
        MemorySegment st = callState();
        try (Arena arena = Arena.ofConfined()) {
            return (int) result((int) MEMFD_CREATE.invokeExact(st, arena.allocateFrom(name), flags), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code ioctl} with a pointer argument. */
    public static int ioctl(int fd, long request, MemorySegment arg) {
        MemorySegment st = callState();
        try {
            return (int) result((int) IOCTL.invokeExact(st, fd, request, arg), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code socket}. */
    public static int socket(int domain, int type, int protocol) {
        MemorySegment st = callState();
        try {
            return (int) result((int) SOCKET.invokeExact(st, domain, type, protocol), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code socketpair}: {@code sv} receives two ints. */
    public static int socketpair(int domain, int type, int protocol, MemorySegment sv) {
        MemorySegment st = callState();
        try {
            return (int) result((int) SOCKETPAIR.invokeExact(st, domain, type, protocol, sv), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code bind}: {@code addr} is a sockaddr of {@code addrLen} bytes. */
    public static int bind(int fd, MemorySegment addr, int addrLen) {
        MemorySegment st = callState();
        try {
            return (int) result((int) BIND.invokeExact(st, fd, addr, addrLen), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int listen(int fd, int backlog) {
        MemorySegment st = callState();
        try {
            return (int) result((int) LISTEN.invokeExact(st, fd, backlog), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code accept4} without the peer address. */
    public static int accept4(int fd, int flags) {
        MemorySegment st = callState();
        try {
            return (int) result((int) ACCEPT4.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, flags), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code connect}: {@code addr} is a sockaddr of {@code addrLen} bytes. */
    public static int connect(int fd, MemorySegment addr, int addrLen) {
        MemorySegment st = callState();
        try {
            return (int) result((int) CONNECT.invokeExact(st, fd, addr, addrLen), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code sendmsg}: {@code msg} is a {@code struct msghdr}. */
    public static long sendmsg(int fd, MemorySegment msg, int flags) {
        MemorySegment st = callState();
        try {
            return result((long) SENDMSG.invokeExact(st, fd, msg, flags), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code recvmsg}: {@code msg} is a {@code struct msghdr}. */
    public static long recvmsg(int fd, MemorySegment msg, int flags) {
        MemorySegment st = callState();
        try {
            return result((long) RECVMSG.invokeExact(st, fd, msg, flags), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public static int shutdown(int fd, int how) {
        MemorySegment st = callState();
        try {
            return (int) result((int) SHUTDOWN.invokeExact(st, fd, how), st);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }
}
