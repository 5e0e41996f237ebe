package io.vhostblk.frontend;

import io.vhostblk.compat.VirtioBlkHandler;
import io.vhostblk.compat.UsedSink;
import io.vhostblk.drivers.KickAware;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.DescriptorException;
import io.vhostblk.virtio.Virtqueue;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.VirtioException;

import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The event loop of one virtqueue, on its own platform thread: wait for a kick or a driver
 * completion, drain the avail ring, start each request through the compat-lib, reap what the
 * driver finished, and publish the used ring (at once to a guest that waits for an answer, else
 * every few answers and at the end of the batch), signalling the guest when it asks.
 */
public final class QueueLoop implements VhostUserDevice.QueueWorker, UsedSink {
    private static final System.Logger LOG = System.getLogger(QueueLoop.class.getName());
    private static final int POLL_KICK = 0;
    private static final int POLL_STOP = 1;
    private static final int POLL_MAILBOX = 2;
    private static final int POLL_DRIVER = 3;
    /** Without a kick fd the front-end expects the ring to be polled; this bounds the delay. */
    private static final int NO_KICK_POLL_MILLIS = 1;

    private final String label;
    private final Virtqueue queue;
    private final VirtioBlkHandler context;
    private final EventFd kick;
    private final EventFd call;
    private final EventFd stopSignal;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollFds;
    private final int pollCount;
    private final Thread thread;
    private final AdaptiveWait waiter;
    private final AdaptiveWait.Source ringSource = new RingSource();
    private final KickAware ringWait;
    private volatile boolean stopping;
    private boolean closed;
    /** A hostile guest can send bad chains in a loop: say so at most once a second. */
    private static final long BAD_CHAIN_LOG_NANOS = 1_000_000_000L;
    private long lastBadChainLog = -BAD_CHAIN_LOG_NANOS;
    private long badChains;
    private boolean usedPending;
    /** Used elements pushed since the last publish. */
    private int usedUnpublished;
    /**
     * Publish after this many used elements even mid-batch, so a guest that polls the used ring
     * refills while the rest of a deep batch is served. A guest that waits for a call is answered
     * at the first element instead ({@link #used}).
     */
    private static final int PUBLISH_EVERY = 8;
    /** Call eventfd writes, for the stop log (a cost per wake-up of the guest, worth seeing). */
    private long calls;
    /** This loop in the process's count of serving loops (whether it may spin longer for its driver). */
    private final ServingLoops.Member serving = ServingLoops.PROCESS.member();
    private boolean broken;

    /** Creates the loop; the context is built with this loop as its used-ring sink. */
    public QueueLoop(String label, Virtqueue queue, ContextFactory contexts, EventFd kick, EventFd call,
                     QueueTuning tuning) throws VhostUserException {
        this.label = label;
        this.waiter = new AdaptiveWait(new PollWindow(tuning.pollMicros() * 1000L, tuning.pollInflightMicros() * 1000L),
                System::nanoTime);
        this.queue = queue;
        this.kick = kick;
        this.call = call;
        try {
            this.context = contexts.create(this);
            this.stopSignal = EventFd.create(true);
        } catch (LinuxException e) {
            throw new VhostUserException(label + ": cannot create the queue's stop eventfd", e);
        } catch (Exception e) {
            throw new VhostUserException(label + ": cannot open the driver queue: " + e.getMessage(), e);
        }
        // With an io_uring driver the kick fd is watched on the driver's own ring: one
        // io_uring_enter both submits the batch and sleeps until a kick or a completion.
        KickAware onRing = kick == null || !tuning.kickOnRing() ? null : context.kickAware();
        if (onRing != null) {
            // A multishot poll may post two CQEs for kicks that one read already drained: the
            // second read must not block (a front-end may pass a blocking eventfd).
            int rc = kick.makeNonBlocking();
            if (rc < 0) {
                LOG.log(Level.WARNING, label + ": cannot make the kick eventfd non-blocking ("
                        + io.vhostblk.linux.Errno.describe(-rc) + "); watching it with poll() instead of on the ring");
                onRing = null;
            }
        }
        this.ringWait = onRing;
        if (ringWait != null) {
            ringWait.armKick(kick.fd(), kick::drain);
            context.alsoSignal(kick);
        }
        int driverFd = context.completionFd();
        this.pollCount = driverFd >= 0 ? 4 : 3;
        this.pollFds = arena.allocate(Libc.POLLFD, 4);
        setPollFd(POLL_KICK, kick == null ? -1 : kick.fd());
        setPollFd(POLL_STOP, stopSignal.fd());
        setPollFd(POLL_MAILBOX, context.mailboxFd());
        setPollFd(POLL_DRIVER, driverFd);
        this.thread = Thread.ofPlatform().name("vhost-blk-" + label).unstarted(this::run);
    }

    /** Builds a queue's compat-lib context around the loop's used-ring sink. */
    @FunctionalInterface
    public interface ContextFactory {
        VirtioBlkHandler create(UsedSink sink) throws Exception;
    }

    /** Starts the loop thread. */
    public QueueLoop start() {
        thread.start();
        return this;
    }

    private void setPollFd(int i, int fd) {
        long base = i * Libc.POLLFD.byteSize();
        pollFds.set(ValueLayout.JAVA_INT, base, fd);
        pollFds.set(ValueLayout.JAVA_SHORT, base + 4, Libc.POLLIN);
        pollFds.set(ValueLayout.JAVA_SHORT, base + 6, (short) 0);
    }

    private short revents(int i) {
        return pollFds.get(ValueLayout.JAVA_SHORT, i * Libc.POLLFD.byteSize() + 6);
    }

    private void run() {
        serving.serving();
        try {
            serve();
        } finally {
            serving.idle();
        }
    }

    private void serve() {
        LOG.log(Level.INFO, label + ": queue started (size " + queue.size() + ", first avail " + queue.nextAvail()
                + ", poll window up to " + waiter.window().maxNanos() / 1000 + " us, " + waiter.window().busyMaxNanos() / 1000
                + " us while the driver holds requests and the process has a CPU per serving queue loop)");
        try {
            // Guest kicks stay off while the loop works or polls; waitForWork turns them on
            // only to sleep (AdaptiveWait).
            while (!stopping) {
                if (!broken) {
                    drainAvail();
                }
                context.flushBatch();
                context.reap();
                publish();
                waitForWork();
            }
            finishInFlight();
        } catch (RuntimeException | Error e) {
            LOG.log(Level.ERROR, label + ": queue loop failed; the queue stops serving", e);
        } finally {
            LOG.log(Level.INFO, label + ": queue stopped at avail index " + queue.nextAvail() + " (waits ended by polling "
                    + waiter.polled() + ", by the re-check " + waiter.rechecked() + ", by a sleep " + waiter.slept() + "; calls sent " + calls + ")");
        }
    }

    private void drainAvail() {
        try {
            int head;
            while ((head = queue.popAvail()) >= 0) {
                if (context.busy(head) || queue.awaitingPublish(head)) {
                    markBroken("the guest made head " + head + " available again while it is still in flight");
                    return;
                }
                try {
                    queue.walk(head, context.chainFor(head));
                } catch (DescriptorException e) {
                    int written = queue.answerRejected(head, (byte) VirtioBlk.S_IOERR);
                    badChains++;
                    long now = System.nanoTime();
                    if (now - lastBadChainLog < BAD_CHAIN_LOG_NANOS) {
                        used(head, written);
                        continue;
                    }
                    lastBadChainLog = now;
                    LOG.log(Level.WARNING, label + " head=" + head + ": bad descriptor chain, "
                            + (written > 0 ? "failed with IOERR: " : "returned with no status (none found): ") + e.getMessage()
                            + " (bad chains on this queue so far: " + badChains + ")");
                    used(head, written);
                    continue;
                }
                context.submit(head);
            }
        } catch (VirtioException e) {
            markBroken(e.getMessage());
        }
    }

    private void markBroken(String why) {
        broken = true;
        LOG.log(Level.ERROR, label + ": queue is broken and stops taking requests until the front-end resets it: " + why);
    }

    @Override
    public void used(int head, int writtenLength) {
        queue.logWritable(context.chainFor(head));
        queue.pushUsed(head, writtenLength);
        usedPending = true;
        // A guest asleep until its next answer gets it now, not after the batch: it refills while
        // we serve the rest, and the queue streams instead of waking it once per batch (issue 14:
        // 2-4x the IOPS at half the CPU per request with a sleeping generator). Until it wakes and
        // asks again, it no longer waits, so the rest are published every PUBLISH_EVERY.
        if (++usedUnpublished >= PUBLISH_EVERY || queue.driverAwaitsUsed()) {
            publish();
        }
    }

    private void publish() {
        if (!usedPending) {
            return;
        }
        usedPending = false;
        usedUnpublished = 0;
        if (queue.publishUsed() && call != null) {
            calls++;
            int rc = call.signal();
            if (rc < 0) {
                LOG.log(Level.WARNING, label + ": cannot signal the call eventfd: " + io.vhostblk.linux.Errno.describe(-rc));
            }
        }
    }

    private void waitForWork() {
        if (broken) {
            sleepOnFds();
        } else {
            waiter.await(ringSource);
        }
    }

    /** The queue's side of {@link AdaptiveWait}: its avail ring, its driver's completions and its fds. */
    private final class RingSource implements AdaptiveWait.Source {
        @Override
        public boolean workReady() {
            return stopping || queue.hasAvail() || (context.inFlight() > 0 && context.reap() > 0);
        }

        @Override
        public void kicksEnabled(boolean enabled) {
            queue.setKicksEnabled(enabled);
        }

        @Override
        public boolean driverBusy() {
            // Only with a CPU per serving loop: spinning loops that share a core hold each other's
            // answers for a scheduler slice (2 queues on 1 CPU, QD1: p99 3.5 ms with the longer
            // spin, 0.5 ms without).
            return context.inFlight() > 0 && ServingLoops.PROCESS.cpuEach();
        }

        @Override
        public boolean availPending() {
            return queue.hasAvail();
        }

        @Override
        public void sleep() {
            sleepOnFds();
        }
    }

    private void sleepOnFds() {
        if (ringWait != null && !broken) {
            // One wait on the ring, unbounded: such a loop counts as serving while it runs.
            int rc = ringWait.awaitCompletions();
            if (rc < 0 && rc != -io.vhostblk.linux.Errno.EINTR) {
                throw new IllegalStateException(label + ": io_uring wait failed: " + io.vhostblk.linux.Errno.describe(-rc));
            }
            return;
        }
        int rc;
        if (kick == null && !broken) {
            rc = Libc.poll(pollFds, pollCount, NO_KICK_POLL_MILLIS);
        } else {
            // A first, bounded sleep: if nothing comes within it the loop counts as idle until its
            // next work, so it does not hold back the longer spin of loops that are serving.
            rc = Libc.poll(pollFds, pollCount, ServingLoops.IDLE_MILLIS);
            if (rc == 0) {
                serving.idle();
                rc = Libc.poll(pollFds, pollCount, -1);
            }
            serving.serving();
        }
        if (rc < 0) {
            if (rc != -io.vhostblk.linux.Errno.EINTR) {
                throw new IllegalStateException(label + ": poll failed: " + io.vhostblk.linux.Errno.describe(-rc));
            }
            return;
        }
        if (kick != null && (revents(POLL_KICK) & Libc.POLLIN) != 0) {
            kick.drain();
        }
        if ((revents(POLL_STOP) & Libc.POLLIN) != 0) {
            stopSignal.drain();
        }
        if ((revents(POLL_MAILBOX) & Libc.POLLIN) != 0) {
            context.mailboxSeen();
        }
    }

    /**
     * Completes whatever the driver and the modules still hold, so the ring's avail index is exact
     * when we return. Waits on the mailbox and driver fds only (the slice after kick and stop).
     */
    private void finishInFlight() {
        context.flushBatch();
        MemorySegment completions = pollFds.asSlice(POLL_MAILBOX * Libc.POLLFD.byteSize());
        while (context.inFlight() > 0) {
            context.flushBatch();
            if (context.reap() == 0) {
                int rc = Libc.poll(completions, pollCount - POLL_MAILBOX, 100);
                if (rc < 0 && rc != -io.vhostblk.linux.Errno.EINTR) {
                    break;
                }
                if ((revents(POLL_MAILBOX) & Libc.POLLIN) != 0) {
                    context.mailboxSeen();
                }
            }
        }
        publish();
        if (ringWait != null) {
            ringWait.disarmKick();
            context.flushBatch();
        }
    }

    @Override
    public synchronized void stop() {
        if (!stopping) {
            stopping = true;
            stopSignal.signal();
            if (ringWait != null) {
                // The loop may be asleep on its ring, which watches the kick fd, not the stop fd.
                kick.signal();
            }
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive() && !closed) {
            closed = true;
            context.close();
            stopSignal.close();
        }
    }
}
