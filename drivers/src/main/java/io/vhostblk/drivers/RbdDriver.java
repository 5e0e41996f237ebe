package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Serves a Ceph RBD image through librbd: reads and writes straight between the request's iovecs
 * and librbd ({@code rbd_aio_readv}/{@code rbd_aio_writev}), FLUSH, DISCARD and WRITE_ZEROES as
 * their librbd calls, all asynchronous. Each queue opens its own image handle whose completions
 * librbd announces on the queue's eventfd ({@code rbd_set_image_notification}); the queue's
 * event loop collects them with {@code rbd_poll_io_events}, so no Java code runs on librbd's
 * threads. Devices on the same cluster share one librados connection ({@link RadosCluster}).
 *
 * <p>A snapshot ({@code rbd:POOL/IMAGE@SNAP}) is served read-only. The capacity is the image's size
 * when opened, and changes through {@link #resize} ({@code rbd_resize}) or when another client
 * resizes the image ({@code rbd resize}): librbd's update watch on the device's handle calls
 * {@link #headerUpdated} on a librbd thread, which only starts a thread that compares the size
 * and tells the {@link CapacityListener}.
 */
public final class RbdDriver implements BlockDriver {
    private static final System.Logger LOG = System.getLogger(RbdDriver.class.getName());

    private final RbdImageName name;
    private final RadosCluster cluster;
    private final long ioctx;
    /** The device's own handle: size at open, and {@link #sync}. Queues write through their own. */
    private final long image;
    /** Written by {@link #resize} (control thread), read by the queues: volatile. */
    private volatile long capacity;
    private final boolean readOnly;
    private boolean closed;
    /** The queues' image handles, which must see a new size before the guest does ({@link #resize}). */
    private final java.util.Set<Long> queueImages = new java.util.HashSet<>();
    /** Holds the update watch's upcall stub; closed after the watch is removed. */
    private final Arena watchArena = Arena.ofShared();
    /** librbd's handle of the update watch, or -1 when none is registered. */
    private long watchHandle = -1;
    private volatile CapacityListener listener;

    private RbdDriver(RbdImageName name, RadosCluster cluster, long ioctx, long image, long capacity, boolean readOnly) {
        this.name = name;
        this.cluster = cluster;
        this.ioctx = ioctx;
        this.image = image;
        this.capacity = capacity;
        this.readOnly = readOnly;
    }

    /**
     * Connects (or reuses this process's connection) and opens the image.
     *
     * @throws DriverException naming what failed: librbd missing, the cluster unreachable, the key
     *                         refused, the pool, image or snapshot missing, a size not a multiple of 512
     */
    public static RbdDriver open(RbdImageName name, boolean readOnly, RbdClient client) throws DriverException {
        RadosCluster cluster = RadosCluster.acquire(client);
        try {
            long ioctx = cluster.pool(name.pool());
            boolean ro = readOnly || name.snapshot() != null;
            long image = openImage(ioctx, name, ro, client);
            long size;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(JAVA_LONG);
                int rc = (int) Librbd.RBD_GET_SIZE.invokeExact(image, out.address());
                size = out.get(JAVA_LONG, 0);
                if (rc < 0 || size % 512 != 0 || size == 0) {
                    int closeRc = (int) Librbd.RBD_CLOSE.invokeExact(image);
                    throw new DriverException(name + ": " + (rc < 0 ? "cannot read the image size: " + Errno.describe(-rc)
                            : "the image size " + size + " is not a positive multiple of 512 bytes")
                            + (closeRc < 0 ? " (closing it: " + Errno.describe(-closeRc) + ")" : ""));
                }
            } catch (DriverException e) {
                throw e;
            } catch (Throwable t) {
                throw Librbd.impossible(t);
            }
            RbdDriver driver = new RbdDriver(name, cluster, ioctx, image, size, ro);
            driver.watchUpdates();
            return driver;
        } catch (DriverException | RuntimeException | Error e) {
            cluster.release();
            throw e;
        }
    }

    /**
     * Registers librbd's update watch on the device's handle, so a resize by another client is
     * seen. Failing to is not fatal: the image is served, and only such a resize goes unseen.
     */
    private void watchUpdates() {
        try {
            MethodHandle target = MethodHandles.lookup().findVirtual(RbdDriver.class, "headerUpdated",
                    MethodType.methodType(void.class, MemorySegment.class)).bindTo(this);
            MemorySegment stub = Linker.nativeLinker().upcallStub(target,
                    FunctionDescriptor.ofVoid(ValueLayout.ADDRESS), watchArena);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(JAVA_LONG);
                int rc = (int) Librbd.RBD_UPDATE_WATCH.invokeExact(image, out.address(), stub.address(), 0L);
                if (rc < 0) {
                    LOG.log(System.Logger.Level.WARNING, "{0}: cannot watch the image for resizes by other clients: {1}",
                            name, Errno.describe(-rc));
                    return;
                }
                watchHandle = out.get(JAVA_LONG, 0);
            }
        } catch (NoSuchMethodException | IllegalAccessException e) {
            throw new AssertionError(e);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
    }

    /**
     * librbd's update-watch callback, on a librbd thread: something in the image header changed.
     * Does no librbd call here (the callback runs on librbd's own work queue) and never throws (an
     * exception in an upcall ends the process): a short-lived thread looks at the size.
     */
    private void headerUpdated(MemorySegment arg) {
        try {
            Thread.ofVirtual().name("rbd-update-" + name.image()).start(this::checkSize);
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, name + ": cannot look at the image after an update notice", t);
        }
    }

    /** Adopts a size another client gave the image, once every queue's handle sees it, and tells the listener. */
    private void checkSize() {
        long size;
        synchronized (this) {
            if (closed) {
                return;
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(JAVA_LONG);
                int rc = (int) Librbd.RBD_GET_SIZE.invokeExact(image, out.address());
                size = out.get(JAVA_LONG, 0);
                if (rc < 0 || size == capacity) {
                    return;
                }
                if (size % 512 != 0 || size == 0) {
                    LOG.log(System.Logger.Level.ERROR, "{0}: resized by another client to {1} bytes, not a positive "
                            + "multiple of 512: keeping {2}", name, size, capacity);
                    return;
                }
                long deadline = System.nanoTime() + cluster.client().timeoutSeconds() * 1_000_000_000L;
                for (long queueImage : queueImages) {
                    awaitSize(queueImage, size, deadline);
                }
            } catch (DriverException e) {
                LOG.log(System.Logger.Level.ERROR, "{0}: resized by another client, but {1}", name, e.getMessage());
                return;
            } catch (Throwable t) {
                throw Librbd.impossible(t);
            }
            LOG.log(System.Logger.Level.INFO, "{0}: resized by another client from {1} to {2} bytes", name, capacity, size);
            capacity = size;
        }
        CapacityListener l = listener;
        if (l != null) {
            l.capacityChanged(size);
        }
    }

    @Override
    public void capacityListener(CapacityListener listener) {
        this.listener = listener;
    }

    /** Opens one handle on the image (read-only for snapshots and read-only exports). */
    static long openImage(long ioctx, RbdImageName name, boolean readOnly, RbdClient client) throws DriverException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            long image = arena.allocateFrom(name.image()).address();
            long snap = name.snapshot() == null ? 0 : arena.allocateFrom(name.snapshot()).address();
            int rc = readOnly
                    ? (int) Librbd.RBD_OPEN_READ_ONLY.invokeExact(ioctx, image, out.address(), snap)
                    : (int) Librbd.RBD_OPEN.invokeExact(ioctx, image, out.address(), snap);
            if (rc < 0) {
                throw new DriverException("cannot open " + name + " as " + client.describe() + ": " + switch (-rc) {
                    case Errno.ENOENT -> name.snapshot() == null ? "no such image in pool '" + name.pool() + "'"
                            : "no such image or snapshot in pool '" + name.pool() + "'";
                    case Errno.EPERM, Errno.EACCES -> Errno.describe(-rc) + ": the client's caps do not allow it";
                    case Errno.ETIMEDOUT -> "ETIMEDOUT: the cluster did not answer within " + client.timeoutSeconds() + " s";
                    default -> Errno.describe(-rc);
                });
            }
            return out.get(JAVA_LONG, 0);
        } catch (DriverException e) {
            throw e;
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
    }

    @Override
    public String kind() {
        return "rbd";
    }

    @Override
    public String target() {
        return name.toString();
    }

    public RbdImageName name() {
        return name;
    }

    @Override
    public long capacity() {
        return capacity;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    /** librbd discards whole objects and zeroes partial ones (rbd_skip_partial_discard off): reads give zeros. */
    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    /** Opens this queue's own image handle, its completion eventfd and its completion slots. */
    @Override
    public DriverQueue openQueue(int queueIndex, DriverCompletion completion) throws DriverException {
        RbdQueue queue = new RbdQueue(this, queueIndex, completion, openImage(ioctx, name, readOnly, cluster.client()));
        synchronized (this) {
            queueImages.add(queue.image());
        }
        return queue;
    }

    /** A queue is about to close its handle. */
    synchronized void queueClosing(long queueImage) {
        queueImages.remove(queueImage);
    }

    /**
     * Resizes the image with {@code rbd_resize} on the device's own handle, then waits (bounded by
     * the client's timeout) until every queue's handle reports the new size: librbd tells the
     * other handles through the image header's watch, asynchronously, and a handle that has not
     * heard of it yet refuses a request past its old end (EINVAL). Only then does the capacity
     * change, so the guest never sends what a queue would refuse.
     */
    @Override
    public synchronized void resize(long bytes) throws DriverException {
        if (readOnly) {
            throw new DriverException(name + " is served read-only" + (name.snapshot() != null ? " (a snapshot)" : "")
                    + ": its size cannot change");
        }
        int rc;
        try {
            rc = (int) Librbd.RBD_RESIZE.invokeExact(image, bytes);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (rc < 0) {
            throw new DriverException("cannot resize " + name + " to " + bytes + " bytes: rbd_resize: " + Errno.describe(-rc));
        }
        long deadline = System.nanoTime() + cluster.client().timeoutSeconds() * 1_000_000_000L;
        for (long queueImage : queueImages) {
            awaitSize(queueImage, bytes, deadline);
        }
        capacity = bytes;
    }

    /** Polls a handle's size (rbd_get_size refreshes a handle that was told of a change) until it is {@code bytes}. */
    private void awaitSize(long handle, long bytes, long deadline) throws DriverException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            while (true) {
                int rc = (int) Librbd.RBD_GET_SIZE.invokeExact(handle, out.address());
                if (rc < 0) {
                    throw new DriverException(name + " was resized to " + bytes + " bytes, but a queue's handle cannot "
                            + "read its size: " + Errno.describe(-rc));
                }
                if (out.get(JAVA_LONG, 0) == bytes) {
                    return;
                }
                if (System.nanoTime() > deadline) {
                    throw new DriverException(name + " was resized to " + bytes + " bytes, but a queue's handle still "
                            + "sees " + out.get(JAVA_LONG, 0) + " after " + cluster.client().timeoutSeconds()
                            + " s; the guest keeps the old size (resize again to retry)");
                }
                Thread.sleep(10);
            }
        } catch (DriverException e) {
            throw e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DriverException(name + ": interrupted while waiting for the queues to see the new size", e);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
    }

    /** Every request completes only when the OSDs have it (no librbd cache), so this only asks librbd to confirm. */
    @Override
    public void sync() throws DriverException {
        int rc;
        try {
            rc = (int) Librbd.RBD_FLUSH.invokeExact(image);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (rc < 0) {
            throw new DriverException("flush of " + name + " failed: " + Errno.describe(-rc));
        }
    }

    /** Closes the image and releases the connection; queues must be closed first. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (watchHandle >= 0) {
            int rc;
            try {
                // Returns once no callback runs any more: the stub may then go.
                rc = (int) Librbd.RBD_UPDATE_UNWATCH.invokeExact(image, watchHandle);
            } catch (Throwable t) {
                throw Librbd.impossible(t);
            }
            if (rc < 0) {
                LOG.log(System.Logger.Level.WARNING, "{0}: removing the update watch failed: {1}", name, Errno.describe(-rc));
            }
        }
        RbdQueue.closeImage(image, name);
        watchArena.close();
        cluster.release();
        LOG.log(System.Logger.Level.DEBUG, "closed {0}", name);
    }

    RbdClient client() {
        return cluster.client();
    }
}
