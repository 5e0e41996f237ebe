package io.vhostblk.modules.reduce;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A volume image in a file, synchronous: every operation runs inside the call and completes there. For the offline
 * tools and tests; a serving volume goes through the layers beneath its module instead. Punches holes with
 * {@code fallocate(PUNCH_HOLE)} so {@code du} shows the space the volume really uses. Buffers must be native.
 */
public final class FileBackingStore implements BackingStore {

    private static final System.Logger LOG = System.getLogger(FileBackingStore.class.getName());
    private static final int O_RDWR = 2;
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;
    private static final int FALLOC_FL_KEEP_SIZE = 1;
    private static final int FALLOC_FL_PUNCH_HOLE = 2;
    private static final int EINTR = 4;
    private static final int EOPNOTSUPP = 95;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    // open(2) is variadic: the mode is its first variadic argument.
    private static final MethodHandle OPEN = bind("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = bind("pread64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle PWRITE = bind("pwrite64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle FDATASYNC = bind("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle FALLOCATE = bind("fallocate64", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle CLOSE = bind("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    private final Path path;
    private final long size;
    private final int fd;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment state = arena.allocate(CALL_STATE);
    private boolean holesUnsupported;

    private FileBackingStore(Path path, long size, int fd) {
        this.path = path;
        this.size = size;
        this.fd = fd;
    }

    private static MethodHandle bind(String name, FunctionDescriptor d, Linker.Option... more) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new IllegalStateException("libc has no " + name));
        Linker.Option[] options = java.util.Arrays.copyOf(more, more.length + 1);
        options[more.length] = Linker.Option.captureCallState("errno");
        return LINKER.downcallHandle(symbol, d, options);
    }

    /** Opens an existing image; its current size is the store's size. */
    public static FileBackingStore open(Path path, boolean readOnly) throws IOException {
        long size = Files.size(path);
        int fd;
        int errno;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CALL_STATE);
            fd = (int) OPEN.invokeExact(st, a.allocateFrom(path.toString()), (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
            errno = (int) ERRNO.get(st, 0L);
        } catch (Throwable t) {
            throw new IOException(path + ": open failed", t);
        }
        if (fd < 0) {
            throw new IOException(path + ": open failed: errno " + errno);
        }
        return new FileBackingStore(path, size, fd);
    }

    @Override
    public long size() {
        return size;
    }

    private int errno() {
        return (int) ERRNO.get(state, 0L);
    }

    private static void requireNative(MemorySegment buffer) {
        if (!buffer.isNative()) {
            throw new IllegalArgumentException("file I/O needs a native buffer");
        }
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        requireNative(buffer);
        done.complete(transfer(PREAD, offset, buffer));
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        requireNative(buffer);
        done.complete(transfer(PWRITE, offset, buffer));
    }

    /** Runs pread/pwrite until the whole buffer is done; 0 or -errno (reading past the end is EIO). */
    private int transfer(MethodHandle call, long offset, MemorySegment buffer) {
        long done = 0;
        long length = buffer.byteSize();
        while (done < length) {
            long n;
            try {
                n = (long) call.invokeExact(state, fd, buffer.asSlice(done), length - done, offset + done);
            } catch (Throwable t) {
                throw new IllegalStateException("pread/pwrite downcall", t);
            }
            if (n < 0) {
                if (errno() == EINTR) {
                    continue;
                }
                return -errno();
            }
            if (n == 0) {
                return Errno.EIO; // past the end of the file
            }
            done += n;
        }
        return 0;
    }

    @Override
    public void flush(IoCompletion done) {
        int r;
        try {
            r = (int) FDATASYNC.invokeExact(state, fd);
        } catch (Throwable t) {
            throw new IllegalStateException("fdatasync downcall", t);
        }
        done.complete(r < 0 ? -errno() : 0);
    }

    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        if (holesUnsupported) {
            done.complete(0);
            return;
        }
        int r;
        try {
            r = (int) FALLOCATE.invokeExact(state, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
        } catch (Throwable t) {
            throw new IllegalStateException("fallocate downcall", t);
        }
        if (r < 0 && errno() == EOPNOTSUPP) {
            holesUnsupported = true;
            LOG.log(System.Logger.Level.INFO, "{0}: the file system cannot punch holes; freed space stays allocated in the file", path);
            r = 0;
        }
        done.complete(r < 0 ? -errno() : 0);
    }

    @Override
    public void close() {
        try {
            int r = (int) CLOSE.invokeExact(state, fd);
            if (r < 0) {
                LOG.log(System.Logger.Level.WARNING, "{0}: close failed: errno {1}", path, errno());
            }
        } catch (Throwable t) {
            throw new IllegalStateException("close downcall", t);
        } finally {
            arena.close();
        }
    }
}
