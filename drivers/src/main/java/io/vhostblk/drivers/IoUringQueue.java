package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.IoUring;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;

import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One queue's io_uring: requests become SQEs tagged with their slot, one {@code io_uring_enter}
 * per batch hands them to the kernel, and {@link #reap} turns CQEs back into completions.
 *
 * <p><b>Ring-full behaviour.</b> {@link #submit} never fails or blocks: a request that finds the
 * SQ full, or would take the kernel past the CQ's size, waits in a software backlog (a FIFO of
 * slots). {@link #flushBatch} fills the SQ from the backlog and enters, repeatedly, until the
 * backlog is empty or the kernel holds as many requests as the CQ has entries; {@link #reap}
 * resumes it as completions free room. Keeping in-kernel requests at or below the CQ size means
 * the CQ cannot overflow.
 *
 * <p><b>Short transfers.</b> A read or write that moves fewer bytes than asked (end of file, a
 * signal) is finished synchronously on the buffered descriptor by the file driver's logic, which
 * fills the tail of a read past end of file with zeros. EINVAL from an O_DIRECT transfer is
 * retried once through the buffered descriptor; EAGAIN and EINTR are resubmitted a few times.
 *
 * <p><b>Submission.</b> SQEs go to the kernel as soon as {@link DriverOptions#submitBatch} of them
 * are filled (default 2), not once per batch: the kernel plugs the block queue around an enter
 * of more than two SQEs, so with a whole virtqueue batch in one enter the first request reached
 * the disk only after the last had been built (~100 us for 32 O_DIRECT reads here) and the disk
 * got bursts instead of a steady queue. {@link #flushBatch} hands over the rest.
 *
 * <p>Nothing on the submit/flush/reap path allocates or locks: per-slot state lives in arrays
 * that grow only when a higher slot number is first seen.
 */
final class IoUringQueue implements DriverQueue, KickAware {
    private static final System.Logger LOG = System.getLogger(IoUringQueue.class.getName());

    /** user_data of the kick poll and of its removal; slots are ints, so these cannot clash. */
    static final long KICK_TAG = 1L << 40;
    static final long KICK_REMOVE_TAG = KICK_TAG + 1;

    private static final int DIRECT_INDEX = 0;
    private static final int BUFFERED_INDEX = 1;
    private static final int MAX_RETRIES = 3;
    private static final int DIRECT_ALIGNMENT_MASK = 511;

    /** How a request is (re)issued: which descriptor, which fallback of WRITE_ZEROES. */
    private static final byte STAGE_DIRECT = 0;
    private static final byte STAGE_BUFFERED = 1;
    private static final byte STAGE_PUNCH = 2;
    private static final byte STAGE_ZERO_RANGE = 3;
    private static final byte STAGE_PUNCH_FALLBACK = 4;

    private final IoUringDriver driver;
    private final int queueIndex;
    private final DriverCompletion completion;
    private final IoUring ring;
    private final EventFd doorbell;
    private final boolean fixedFiles;
    private final int kernelLimit;
    /** SQEs filled that make {@link #enqueue} enter the kernel at once; 0: only {@link #flushBatch} does. */
    private final int submitBatch;

    private BlockRequest[] requests = new BlockRequest[256];
    private byte[] stage = new byte[256];
    private byte[] retries = new byte[256];
    private int[] backlog = new int[256];
    private int backlogHead;
    private int backlogSize;
    /** Requests accepted and not yet completed (backlog included). */
    private int inFlight;
    /**
     * Request SQEs filled (handed to the kernel or not) whose CQE has not been consumed; the kick
     * poll is not counted. Kept at most the CQ size, so the CQ cannot overflow.
     */
    private int inKernel;

    private int kickFd = -1;
    private KickListener kickListener;
    private boolean kickArmPending;
    private boolean kickArmed;
    private boolean kickRemovePending;
    private boolean closed;
    /**
     * A CQE was consumed after the doorbell was last drained, so the doorbell may be rung for a
     * completion already handled; the next {@link #reap} drains it even when the CQ is empty.
     */
    private boolean doorbellStale;

    IoUringQueue(IoUringDriver driver, int queueIndex, DriverCompletion completion) throws DriverException {
        this.driver = driver;
        this.queueIndex = queueIndex;
        this.completion = completion;
        DriverOptions options = driver.options();
        IoUring r;
        try {
            r = IoUring.create(options.ringEntries(), options.completionEntries(), IoUring.EVENT_LOOP_FLAGS, IoUring.KERNEL);
        } catch (LinuxException e) {
            throw new DriverException("cannot set up the io_uring of queue " + queueIndex + " for " + driver.path()
                    + ": " + IoUringProbe.explain(e.errno()), e);
        }
        this.ring = r;
        try {
            this.doorbell = EventFd.create(true);
        } catch (LinuxException e) {
            ring.close();
            throw new DriverException("cannot create the completion eventfd of queue " + queueIndex, e);
        }
        int rc = ring.registerEventFd(doorbell.fd());
        if (rc < 0) {
            doorbell.close();
            ring.close();
            throw new DriverException("cannot register the completion eventfd of queue " + queueIndex
                    + " with io_uring: " + Errno.describe(-rc));
        }
        int files = ring.registerFiles(driver.directFd(), driver.bufferedFd());
        if (files < 0) {
            // Registered files only save a file-table lookup per I/O; plain fds work everywhere.
            LOG.log(System.Logger.Level.DEBUG, "queue {0}: io_uring file registration refused ({1}); using plain fds",
                    queueIndex, Errno.describe(-files));
        }
        this.fixedFiles = files >= 0;
        this.kernelLimit = ring.cqEntries();
        this.submitBatch = options.submitBatch();
        LOG.log(System.Logger.Level.INFO, "queue {0} of {1}: io_uring with {2} SQ / {3} CQ entries, setup flags {4}, "
                + "{5} files, submits every {6}", queueIndex, driver.path(), ring.sqEntries(), ring.cqEntries(),
                IoUring.describeSetupFlags(ring.setupFlags()), fixedFiles ? "registered" : "unregistered",
                submitBatch == 0 ? "batch" : submitBatch + " SQEs");
    }

    /**
     * Starts a ring set up disabled (SINGLE_ISSUER): the first thread to submit or reap, the
     * queue's event loop, becomes its only submitter.
     */
    private void startRing() {
        if (ring.disabled()) {
            int rc = ring.enable();
            if (rc < 0) {
                throw new UncheckedIOException(new LinuxException("io_uring_register(ENABLE_RINGS)", -rc,
                        "queue " + queueIndex + " of " + driver.path()));
            }
        }
    }

    @Override
    public void submit(BlockRequest request) {
        if (driver.readOnly() && request.op().modifies()) {
            completion.complete(request, -Errno.EROFS);
            return;
        }
        int slot = request.slot();
        claim(slot, request);
        stage[slot] = initialStage(request);
        retries[slot] = 0;
        inFlight++;
        enqueue(slot);
    }

    private void claim(int slot, BlockRequest request) {
        if (slot < 0) {
            throw new IllegalArgumentException("negative slot in " + request);
        }
        if (slot >= requests.length) {
            int size = Math.max(requests.length * 2, Integer.highestOneBit(slot) * 2);
            requests = Arrays.copyOf(requests, size);
            stage = Arrays.copyOf(stage, size);
            retries = Arrays.copyOf(retries, size);
        }
        if (requests[slot] != null) {
            throw new IllegalStateException("slot " + slot + " of queue " + queueIndex + " is already in flight: " + requests[slot]);
        }
        requests[slot] = request;
    }

    private byte initialStage(BlockRequest r) {
        return switch (r.op()) {
            case READ, WRITE -> driver.direct() && directAligned(r) ? STAGE_DIRECT : STAGE_BUFFERED;
            case WRITE_ZEROES -> r.unmap() ? STAGE_PUNCH : STAGE_ZERO_RANGE;
            case FLUSH, DISCARD -> STAGE_DIRECT;
        };
    }

    /** O_DIRECT needs the offset and every buffer address and length aligned to the logical block size. */
    private static boolean directAligned(BlockRequest r) {
        long bits = r.offset();
        MemorySegment iov = r.iov();
        for (int i = 0; i < r.iovCount(); i++) {
            bits |= FileDriver.iovBase(iov, i) | FileDriver.iovLength(iov, i);
        }
        return (bits & DIRECT_ALIGNMENT_MASK) == 0;
    }

    /** Puts a request on the SQ, or behind the others in the backlog. */
    private void enqueue(int slot) {
        if (backlogSize == 0 && roomInKernel() && prepare(slot)) {
            inKernel++;
            if (submitBatch > 0 && ring.pending() >= submitBatch) {
                pump();
            }
            return;
        }
        if (backlogSize == backlog.length) {
            int[] grown = new int[backlog.length * 2];
            for (int i = 0; i < backlogSize; i++) {
                grown[i] = backlog[(backlogHead + i) & (backlog.length - 1)];
            }
            backlog = grown;
            backlogHead = 0;
        }
        backlog[(backlogHead + backlogSize) & (backlog.length - 1)] = slot;
        backlogSize++;
    }

    private boolean roomInKernel() {
        return inKernel < kernelLimit;
    }

    /** Fills an SQE for the slot's request at its current stage; false when the SQ is full. */
    private boolean prepare(int slot) {
        BlockRequest r = requests[slot];
        byte st = stage[slot];
        int sqeFlags = fixedFiles ? IoUring.SQE_FIXED_FILE : 0;
        int fd = st == STAGE_BUFFERED ? file(BUFFERED_INDEX, driver.bufferedFd()) : file(DIRECT_INDEX, driver.directFd());
        return switch (r.op()) {
            case READ, WRITE -> {
                boolean read = r.op() == BlockOp.READ;
                MemorySegment iov = r.iov();
                long len = r.iovCount() == 1 ? FileDriver.iovLength(iov, 0) : -1;
                if (len >= 0 && len <= Integer.MAX_VALUE) {
                    // One buffer: READ/WRITE spare the kernel importing an iovec array.
                    yield ring.prepare(read ? IoUring.OP_READ : IoUring.OP_WRITE, sqeFlags, fd, r.offset(),
                            FileDriver.iovBase(iov, 0), (int) len, 0, slot);
                }
                yield ring.prepare(read ? IoUring.OP_READV : IoUring.OP_WRITEV, sqeFlags, fd, r.offset(),
                        iov.address(), r.iovCount(), 0, slot);
            }
            case FLUSH -> ring.prepare(IoUring.OP_FSYNC, sqeFlags, fd, 0, 0, 0, IoUring.FSYNC_DATASYNC, slot);
            case DISCARD -> fallocate(sqeFlags, fd, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, r, slot);
            case WRITE_ZEROES -> fallocate(sqeFlags, fd, st == STAGE_ZERO_RANGE
                    ? Libc.FALLOC_FL_ZERO_RANGE | Libc.FALLOC_FL_KEEP_SIZE
                    : Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, r, slot);
        };
    }

    private boolean fallocate(int sqeFlags, int fd, int mode, BlockRequest r, int slot) {
        // IORING_OP_FALLOCATE carries the offset in off, the length in addr and the mode in len.
        return ring.prepare(IoUring.OP_FALLOCATE, sqeFlags, fd, r.offset(), r.length(), mode, 0, slot);
    }

    private int file(int index, int fd) {
        return fixedFiles ? index : fd;
    }

    @Override
    public void flushBatch() {
        pump();
    }

    /**
     * Moves backlog into the SQ and enters until the backlog is empty or the kernel is at its
     * limit; leaves filled SQEs in place (and rings the doorbell) when the kernel is short of
     * resources, so the next reap retries.
     */
    private void pump() {
        startRing();
        while (true) {
            prepareKickWork();
            while (backlogSize > 0 && roomInKernel() && prepare(backlog[backlogHead])) {
                inKernel++;
                backlogHead = (backlogHead + 1) & (backlog.length - 1);
                backlogSize--;
            }
            int pending = ring.pending();
            if (pending == 0) {
                return;
            }
            int rc = ring.submit();
            if (rc == -Errno.EINTR) {
                continue;
            }
            if (rc == -Errno.EAGAIN || rc == -Errno.EBUSY || rc == 0) {
                // The kernel could not take SQEs now (memory, CQ backlog); without a completion
                // to come, nothing would call reap again, so wake the loop ourselves.
                if (inKernel <= pending) {
                    doorbell.signal();
                }
                return;
            }
            if (rc < 0) {
                throw new UncheckedIOException(new LinuxException("io_uring_enter", -rc,
                        "queue " + queueIndex + " of " + driver.path() + ", " + pending + " SQEs"));
            }
            if (backlogSize == 0 && ring.pending() == 0) {
                return;
            }
        }
    }

    private void prepareKickWork() {
        if (kickRemovePending && ring.prepare(IoUring.OP_POLL_REMOVE, 0, -1, 0, KICK_TAG, 0, 0, KICK_REMOVE_TAG)) {
            kickRemovePending = false;
        }
        if (kickArmPending && ring.prepare(IoUring.OP_POLL_ADD, 0, kickFd, 0, 0, IoUring.POLL_ADD_MULTI,
                Libc.POLLIN, KICK_TAG)) {
            kickArmPending = false;
            kickArmed = true;
        }
    }

    @Override
    public int reap() {
        if (!doorbellStale && ring.cqTail() == ring.cqHead() && !ring.cqOverflowed() && !ring.taskRunPending()
                && backlogSize == 0 && ring.pending() == 0 && !kickArmPending && !kickRemovePending) {
            // Nothing to do, and the doorbell cannot be rung for a CQE we already consumed: no
            // system call, so a polling loop may call this as often as it likes.
            return 0;
        }
        startRing();
        if (ring.taskRunPending()) {
            // COOP_TASKRUN: finished I/O waits for us to enter the kernel before its CQEs are
            // posted; a polling loop never would, so enter now (no wait).
            ring.submitAndWait(0);
        }
        // Drain the doorbell before looking at the CQ: a CQE posted after the look rings it again.
        doorbell.drain();
        doorbellStale = false;
        int delivered = 0;
        while (true) {
            int tail = ring.cqTail();
            int head = ring.cqHead();
            if (head == tail) {
                if (ring.cqOverflowed()) {
                    ring.submitAndWait(0);
                    continue;
                }
                break;
            }
            while (tail - (head = ring.cqHead()) > 0) {
                long userData = ring.cqeUserData(head);
                int res = ring.cqeResult(head);
                int flags = ring.cqeFlags(head);
                // Give the CQE back first: the completion handler may submit or even reap again.
                ring.consume(head + 1);
                // This CQE may have rung the doorbell after the drain above.
                doorbellStale = true;
                delivered += dispatch(userData, res, flags);
            }
        }
        if (backlogSize > 0 || ring.pending() > 0 || kickArmPending || kickRemovePending) {
            pump();
        }
        return delivered;
    }

    /** Acts on one CQE; returns 1 when it completed a request to the handler. */
    private int dispatch(long userData, int res, int flags) {
        if (userData >= KICK_TAG) {
            onKickEvent(userData, res, flags);
            return 0;
        }
        inKernel--;
        int slot = (int) userData;
        BlockRequest r = slot < requests.length ? requests[slot] : null;
        if (r == null) {
            LOG.log(System.Logger.Level.WARNING, "queue {0}: completion for slot {1} that is not in flight (res {2})",
                    queueIndex, slot, res);
            return 0;
        }
        long result = res;
        switch (r.op()) {
            case READ, WRITE -> {
                if (res == -Errno.EINVAL && stage[slot] == STAGE_DIRECT && driver.direct()) {
                    stage[slot] = STAGE_BUFFERED;
                    enqueue(slot);
                    return 0;
                }
                if (res >= 0 && res < r.length()) {
                    result = FileIo.finish(driver.bufferedFd(), r.iov(), r.iovCount(), r.offset(), r.length(), res,
                            r.op() == BlockOp.WRITE);
                }
            }
            case WRITE_ZEROES -> {
                if (res < 0 && res != -Errno.EAGAIN && res != -Errno.EINTR) {
                    byte st = stage[slot];
                    boolean unsupported = res == -Errno.EOPNOTSUPP || res == -Errno.EINVAL;
                    if (st == STAGE_PUNCH || (st == STAGE_ZERO_RANGE && unsupported && !r.unmap())) {
                        // Punch failed: try zero-range. Zero-range unsupported: a punched hole reads as zeros too.
                        stage[slot] = st == STAGE_PUNCH ? STAGE_ZERO_RANGE : STAGE_PUNCH_FALLBACK;
                        enqueue(slot);
                        return 0;
                    }
                    if (unsupported) {
                        // Neither deallocation nor zero-range: write zeros (rare, synchronous).
                        result = FileIo.writeZeroes(driver.bufferedFd(), r.offset(), r.length(), false);
                    }
                }
            }
            case FLUSH, DISCARD -> {
            }
        }
        if ((result == -Errno.EAGAIN || result == -Errno.EINTR) && retries[slot] < MAX_RETRIES) {
            retries[slot]++;
            enqueue(slot);
            return 0;
        }
        requests[slot] = null;
        inFlight--;
        if (result < 0) {
            long failure = result;
            LOG.log(System.Logger.Level.DEBUG, () -> r + " failed on " + driver.path() + ": " + Errno.describe((int) -failure));
        }
        completion.complete(r, result);
        return 1;
    }

    private void onKickEvent(long userData, int res, int flags) {
        if (userData == KICK_REMOVE_TAG) {
            return;
        }
        if (res >= 0) {
            if (kickListener != null && kickArmed) {
                kickListener.kicked();
            }
            if ((flags & IoUring.CQE_F_MORE) == 0 && kickArmed) {
                kickArmPending = true;
                kickArmed = false;
            }
        } else if (res != -Errno.ECANCELED && res != -Errno.ENOENT) {
            kickArmed = false;
            LOG.log(System.Logger.Level.WARNING, "queue {0}: io_uring poll on kick fd {1} failed: {2}; "
                    + "the loop must watch the kick fd itself", queueIndex, kickFd, Errno.describe(-res));
        }
    }

    @Override
    public void armKick(int fd, KickListener listener) {
        if (kickArmed) {
            disarmKick();
        }
        kickFd = fd;
        kickListener = listener;
        kickArmPending = true;
    }

    @Override
    public void disarmKick() {
        if (kickArmed) {
            kickRemovePending = true;
        }
        kickArmed = false;
        kickArmPending = false;
    }

    @Override
    public int awaitCompletions() {
        pump();
        startRing();
        return Math.min(ring.submitAndWait(1), 0);
    }

    /** SQEs filled and not yet handed to the kernel (tests). */
    int unsubmitted() {
        return ring.pending();
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
     * Waits (up to 10 s) for the requests the kernel still holds, so none writes into guest
     * memory after the queue is gone, then frees the ring. Their results, and requests still in
     * the backlog, are dropped: the loop is shutting down.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (inKernel > 0 && System.nanoTime() < deadline) {
            int rc = ring.submitAndWait(1);
            if (rc < 0 && rc != -Errno.EINTR) {
                // EEXIST: a SINGLE_ISSUER ring closed by another thread than its event loop
                // (the loop died); the kernel cancels what it holds when the ring closes.
                LOG.log(System.Logger.Level.WARNING, "queue {0} of {1}: cannot wait for {2} requests in the kernel: {3}",
                        queueIndex, driver.path(), inKernel, Errno.describe(-rc));
                break;
            }
            int tail = ring.cqTail();
            for (int head = ring.cqHead(); head != tail; head++) {
                if (ring.cqeUserData(head) < KICK_TAG) {
                    inKernel--;
                }
                ring.consume(head + 1);
            }
        }
        if (inFlight > 0) {
            LOG.log(System.Logger.Level.WARNING, "queue {0} of {1} closed with {2} requests unanswered ({3} still in the kernel)",
                    queueIndex, driver.path(), inFlight, inKernel);
        }
        ring.close();
        doorbell.close();
    }
}
