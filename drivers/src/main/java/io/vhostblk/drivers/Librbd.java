package io.vhostblk.drivers;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * librados and librbd (Debian {@code librados2}, {@code librbd1}) bound through the FFM API, for
 * the rbd driver only; kept here rather than in {@code linux} because they are an optional
 * user-space library, not the kernel interface, and only this package uses them.
 *
 * <p>Handles, completions and buffers are passed as plain {@code long} addresses (pointers are
 * 64-bit integers in the x86-64 and AArch64 C ABIs), so a call on the I/O path boxes nothing and
 * creates no {@link MemorySegment}. Every int-returning call returns {@code -errno} on failure.
 * When the libraries are missing the handles stay null and {@link #requireLoaded} says so.
 */
final class Librbd {
    /** {@code EVENT_TYPE_EVENTFD} of {@code rbd_set_image_notification}. */
    static final int EVENT_TYPE_EVENTFD = 2;

    /** The libraries by soname, or by path from the system properties (another Ceph build than the system's). */
    private static final String RADOS_LIBRARY = System.getProperty("vhostblk.librados", "librados.so.2");
    private static final String RBD_LIBRARY = System.getProperty("vhostblk.librbd", "librbd.so.1");
    /** Why the libraries could not be loaded, or null when they were. */
    private static final String MISSING;

    static final MethodHandle RADOS_CREATE;
    static final MethodHandle RADOS_CONF_READ_FILE;
    static final MethodHandle RADOS_CONF_SET;
    static final MethodHandle RADOS_CONNECT;
    static final MethodHandle RADOS_SHUTDOWN;
    static final MethodHandle RADOS_IOCTX_CREATE;
    static final MethodHandle RADOS_IOCTX_DESTROY;
    static final MethodHandle RBD_OPEN;
    static final MethodHandle RBD_OPEN_READ_ONLY;
    static final MethodHandle RBD_CLOSE;
    static final MethodHandle RBD_GET_SIZE;
    static final MethodHandle RBD_RESIZE;
    static final MethodHandle RBD_UPDATE_WATCH;
    static final MethodHandle RBD_UPDATE_UNWATCH;
    static final MethodHandle RBD_FLUSH;
    static final MethodHandle RBD_SET_IMAGE_NOTIFICATION;
    static final MethodHandle RBD_AIO_CREATE_COMPLETION;
    static final MethodHandle RBD_AIO_READV;
    static final MethodHandle RBD_AIO_WRITEV;
    static final MethodHandle RBD_AIO_FLUSH;
    static final MethodHandle RBD_AIO_DISCARD;
    static final MethodHandle RBD_AIO_WRITE_ZEROES;
    static final MethodHandle RBD_AIO_GET_RETURN_VALUE;
    static final MethodHandle RBD_AIO_GET_ARG;
    static final MethodHandle RBD_AIO_RELEASE;
    static final MethodHandle RBD_POLL_IO_EVENTS;

    static {
        Linker linker = Linker.nativeLinker();
        SymbolLookup rados = null;
        SymbolLookup rbd = null;
        String missing = null;
        try {
            rados = SymbolLookup.libraryLookup(RADOS_LIBRARY, Arena.global());
            rbd = SymbolLookup.libraryLookup(RBD_LIBRARY, Arena.global());
        } catch (IllegalArgumentException e) {
            missing = "cannot load " + (rados == null ? RADOS_LIBRARY : RBD_LIBRARY)
                    + " (install Debian's librbd1 package): " + e.getMessage();
        }
        MISSING = missing;
        Binder r = new Binder(linker, rados);
        Binder b = new Binder(linker, rbd);
        RADOS_CREATE = r.bind("rados_create", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        RADOS_CONF_READ_FILE = r.bind("rados_conf_read_file", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        RADOS_CONF_SET = r.bind("rados_conf_set", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        RADOS_CONNECT = r.bind("rados_connect", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        RADOS_SHUTDOWN = r.bind("rados_shutdown", FunctionDescriptor.ofVoid(JAVA_LONG));
        RADOS_IOCTX_CREATE = r.bind("rados_ioctx_create", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        RADOS_IOCTX_DESTROY = r.bind("rados_ioctx_destroy", FunctionDescriptor.ofVoid(JAVA_LONG));
        FunctionDescriptor open = FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);
        RBD_OPEN = b.bind("rbd_open", open);
        RBD_OPEN_READ_ONLY = b.bind("rbd_open_read_only", open);
        RBD_CLOSE = b.bind("rbd_close", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        RBD_GET_SIZE = b.bind("rbd_get_size", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        RBD_RESIZE = b.bind("rbd_resize", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        RBD_UPDATE_WATCH = b.bind("rbd_update_watch", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        RBD_UPDATE_UNWATCH = b.bind("rbd_update_unwatch", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        RBD_FLUSH = b.bind("rbd_flush", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        RBD_SET_IMAGE_NOTIFICATION = b.bind("rbd_set_image_notification",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT));
        RBD_AIO_CREATE_COMPLETION = b.bind("rbd_aio_create_completion",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        FunctionDescriptor vector = FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG);
        RBD_AIO_READV = b.bind("rbd_aio_readv", vector);
        RBD_AIO_WRITEV = b.bind("rbd_aio_writev", vector);
        RBD_AIO_FLUSH = b.bind("rbd_aio_flush", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        RBD_AIO_DISCARD = b.bind("rbd_aio_discard", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        RBD_AIO_WRITE_ZEROES = b.bind("rbd_aio_write_zeroes",
                FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
        RBD_AIO_GET_RETURN_VALUE = b.bind("rbd_aio_get_return_value", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
        RBD_AIO_GET_ARG = b.bind("rbd_aio_get_arg", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
        RBD_AIO_RELEASE = b.bind("rbd_aio_release", FunctionDescriptor.ofVoid(JAVA_LONG));
        RBD_POLL_IO_EVENTS = b.bind("rbd_poll_io_events", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    }

    private Librbd() {
    }

    /** Throws the reason librados/librbd could not be loaded, naming the library and the package. */
    static void requireLoaded() throws DriverException {
        if (MISSING != null) {
            throw new DriverException(MISSING);
        }
    }

    /** Turns a {@code Throwable} from {@code invokeExact} into an unchecked error (downcalls throw none). */
    static AssertionError impossible(Throwable t) {
        return new AssertionError("librbd downcall threw", t);
    }

    private record Binder(Linker linker, SymbolLookup lookup) {
        MethodHandle bind(String name, FunctionDescriptor descriptor) {
            if (lookup == null) {
                return null;
            }
            MemorySegment symbol = lookup.find(name).orElseThrow(
                    () -> new UnsatisfiedLinkError(name + " is missing from librados/librbd (Ceph 15 or later is needed)"));
            return linker.downcallHandle(symbol, descriptor);
        }
    }
}
