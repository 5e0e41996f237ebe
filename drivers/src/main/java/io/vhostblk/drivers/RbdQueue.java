package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.LinuxException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One queue of the rbd driver: its own librbd image handle, whose finished requests librbd announces
 * on this queue's eventfd and queues inside the image; {@link #reap} (on the event loop) collects
 * them with {@code rbd_poll_io_events}. Each request carries its slot number as the completion's
 * argument, so a completion finds its request without a lookup structure.
 *
 * <p>librbd has no batch submission: {@link #submit} hands each request over at once, and
 * {@link #flushBatch} has nothing to do. The Java side allocates nothing per request: the request
 * table and the native out-parameters are made when the queue opens (librbd allocates its own
 * completion object per request natively). A request the cluster does not answer fails with
 * ETIMEDOUT after the client's timeout (librados's {@code rados_osd_op_timeout}), so the queue
 * never hangs.
 */
final class RbdQueue implements DriverQueue {
    private static final System.Logger LOG = System.getLogger(RbdQueue.class.getName());
    /** Completions collected per {@code rbd_poll_io_events} call. */
    private static final int POLL_BATCH = 64;

    private final RbdDriver driver;
    private final int queueIndex;
    private final DriverCompletion completion;
    private final long image;
    private final EventFd doorbell;
    private final Arena arena = Arena.ofShared();
    /** {@code rbd_completion_t} out-parameter of {@code rbd_aio_create_completion}. */
    private final MemorySegment created;
    private final long createdAddress;
    /** {@code rbd_completion_t[POLL_BATCH]} filled by {@code rbd_poll_io_events}. */
    private final MemorySegment polled;
    private final long polledAddress;

    private BlockRequest[] requests = new BlockRequest[256];
    private int inFlight;
    private boolean closed;

    RbdQueue(RbdDriver driver, int queueIndex, DriverCompletion completion, long image) throws DriverException {
        this.driver = driver;
        this.queueIndex = queueIndex;
        this.completion = completion;
        this.image = image;
        try {
            this.doorbell = EventFd.create(true);
        } catch (LinuxException e) {
            closeImage(image, driver.name());
            throw new DriverException("cannot create the completion eventfd of queue " + queueIndex + " of " + driver.name(), e);
        }
        int rc;
        try {
            rc = (int) Librbd.RBD_SET_IMAGE_NOTIFICATION.invokeExact(image, doorbell.fd(), Librbd.EVENT_TYPE_EVENTFD);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (rc < 0) {
            doorbell.close();
            closeImage(image, driver.name());
            throw new DriverException("librbd refused to signal completions of " + driver.name() + " on an eventfd: "
                    + Errno.describe(-rc));
        }
        this.created = arena.allocate(JAVA_LONG);
        this.createdAddress = created.address();
        this.polled = arena.allocate(JAVA_LONG, POLL_BATCH);
        this.polledAddress = polled.address();
    }

    /** This queue's librbd image handle. */
    long image() {
        return image;
    }

    @Override
    public void submit(BlockRequest request) {
        if (driver.readOnly() && request.op().modifies()) {
            completion.complete(request, -Errno.EROFS);
            return;
        }
        int slot = request.slot();
        claim(slot, request);
        int rc;
        long c = 0;
        try {
            rc = (int) Librbd.RBD_AIO_CREATE_COMPLETION.invokeExact((long) slot, 0L, createdAddress);
            if (rc == 0) {
                c = created.get(JAVA_LONG, 0);
                rc = start(request, c);
            }
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (rc < 0) {
            // librbd refused the request before queueing it (bad argument, image closed).
            if (c != 0) {
                release(c);
            }
            requests[slot] = null;
            inFlight--;
            completion.complete(request, rc);
        }
    }

    private int start(BlockRequest r, long c) throws Throwable {
        return switch (r.op()) {
            case READ -> (int) Librbd.RBD_AIO_READV.invokeExact(image, r.iov().address(), r.iovCount(), r.offset(), c);
            case WRITE -> (int) Librbd.RBD_AIO_WRITEV.invokeExact(image, r.iov().address(), r.iovCount(), r.offset(), c);
            case FLUSH -> (int) Librbd.RBD_AIO_FLUSH.invokeExact(image, c);
            case DISCARD -> (int) Librbd.RBD_AIO_DISCARD.invokeExact(image, r.offset(), r.length(), c);
            case WRITE_ZEROES -> (int) Librbd.RBD_AIO_WRITE_ZEROES.invokeExact(image, r.offset(), r.length(), c, 0, 0);
        };
    }

    private void claim(int slot, BlockRequest request) {
        if (slot < 0) {
            throw new IllegalArgumentException("negative slot in " + request);
        }
        if (slot >= requests.length) {
            requests = Arrays.copyOf(requests, Math.max(requests.length * 2, Integer.highestOneBit(slot) * 2));
        }
        if (requests[slot] != null) {
            throw new IllegalStateException("slot " + slot + " of queue " + queueIndex + " is already in flight: " + requests[slot]);
        }
        requests[slot] = request;
        inFlight++;
    }

    @Override
    public void flushBatch() {
    }

    @Override
    public int reap() {
        // Drain the doorbell before polling: a completion queued after the poll rings it again.
        doorbell.drain();
        int delivered = 0;
        int n;
        do {
            n = poll();
            for (int i = 0; i < n; i++) {
                delivered += finish(polled.getAtIndex(JAVA_LONG, i));
            }
        } while (n == POLL_BATCH);
        return delivered;
    }

    private int poll() {
        int n;
        try {
            n = (int) Librbd.RBD_POLL_IO_EVENTS.invokeExact(image, polledAddress, POLL_BATCH);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (n < 0) {
            LOG.log(System.Logger.Level.ERROR, "queue {0} of {1}: rbd_poll_io_events failed: {2}",
                    queueIndex, driver.name(), Errno.describe(-n));
            return 0;
        }
        return n;
    }

    /** Hands one librbd completion to its request; returns 1 when it completed one. */
    private int finish(long c) {
        long slotArg;
        long result;
        try {
            slotArg = (long) Librbd.RBD_AIO_GET_ARG.invokeExact(c);
            result = (long) Librbd.RBD_AIO_GET_RETURN_VALUE.invokeExact(c);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        release(c);
        int slot = (int) slotArg;
        BlockRequest r = slot >= 0 && slot < requests.length ? requests[slot] : null;
        if (r == null) {
            LOG.log(System.Logger.Level.WARNING, "queue {0} of {1}: completion for slot {2} that is not in flight (result {3})",
                    queueIndex, driver.name(), slotArg, result);
            return 0;
        }
        requests[slot] = null;
        inFlight--;
        if (result >= 0 && (r.op() == BlockOp.READ || r.op() == BlockOp.WRITE)) {
            // librbd moves all or fails (reads of unwritten space give zeros) but answers a write with 0:
            // report the bytes moved, as the other drivers do.
            result = r.length();
        }
        if (result < 0) {
            long failure = result;
            LOG.log(System.Logger.Level.DEBUG, () -> r + " failed on " + driver.name() + ": " + Errno.describe((int) -failure));
        }
        completion.complete(r, result);
        return 1;
    }

    private static void release(long c) {
        try {
            Librbd.RBD_AIO_RELEASE.invokeExact(c);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
    }

    @Override
    public int completionFd() {
        return doorbell.fd();
    }

    @Override
    public int inFlight() {
        return inFlight;
    }

    /**
     * Waits (up to the client's timeout and 5 s more) for the requests librbd still holds, so none
     * writes into guest memory after the queue is gone, then closes the image handle. Their results
     * are dropped: the loop is shutting down.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        long deadline = System.nanoTime() + (driver.client().timeoutSeconds() + 5L) * 1_000_000_000L;
        while (inFlight > 0 && System.nanoTime() < deadline) {
            int n = poll();
            for (int i = 0; i < n; i++) {
                long c = polled.getAtIndex(JAVA_LONG, i);
                long slot;
                try {
                    slot = (long) Librbd.RBD_AIO_GET_ARG.invokeExact(c);
                } catch (Throwable t) {
                    throw Librbd.impossible(t);
                }
                release(c);
                if (slot >= 0 && slot < requests.length && requests[(int) slot] != null) {
                    requests[(int) slot] = null;
                    inFlight--;
                }
            }
            if (n == 0) {
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        if (inFlight > 0) {
            LOG.log(System.Logger.Level.WARNING, "queue {0} of {1} closed with {2} requests unanswered by the cluster",
                    queueIndex, driver.name(), inFlight);
        }
        driver.queueClosing(image);
        closeImage(image, driver.name());
        doorbell.close();
        arena.close();
    }

    /** Closes an image handle (librbd waits for its own in-flight requests); logs a failure. */
    static void closeImage(long image, RbdImageName name) {
        int rc;
        try {
            rc = (int) Librbd.RBD_CLOSE.invokeExact(image);
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (rc < 0) {
            LOG.log(System.Logger.Level.WARNING, "closing {0}: {1}", name, Errno.describe(-rc));
        }
    }
}
