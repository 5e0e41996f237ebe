package io.vhostblk.compat;

import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.linux.Libc;

import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A driver queue a module opened itself (a cache device), served by a queue's event loop
 * ({@link io.vhostblk.hooks.HookContext#attach}). The loop submits and reaps it with its own
 * driver queue; a small watcher thread waits on the queue's completion fd and rings the loop's
 * mailbox, so a loop asleep on its own fds (or on its own io_uring) wakes for these completions
 * too, whichever way it waits. The watcher only wakes: the loop does all the work.
 */
final class AttachedQueue implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(AttachedQueue.class.getName());

    final DriverQueue queue;
    private final EventFd stop;
    private final Thread watcher;
    private volatile boolean stopping;

    /** A wake-up is posted and its task has not run yet: further completions need no other. */
    private final java.util.concurrent.atomic.AtomicBoolean wakePosted = new java.util.concurrent.atomic.AtomicBoolean();
    /** Runs on the loop: re-arms the watcher, then reaps (a completion after the re-arm posts again). */
    private final Runnable reapTask;

    /** {@code post} hands a task to the loop's mailbox (which wakes it). */
    AttachedQueue(DriverQueue queue, java.util.function.Consumer<Runnable> post, String label) throws LinuxException {
        this.queue = queue;
        this.reapTask = () -> {
            wakePosted.set(false);
            queue.reap();
        };
        Runnable wakeLoop = () -> {
            if (wakePosted.compareAndSet(false, true)) {
                post.accept(reapTask);
            }
        };
        this.stop = EventFd.create(true);
        int fd = queue.completionFd();
        this.watcher = fd < 0 ? null : Thread.ofPlatform().daemon().name(label + "-attached").unstarted(() -> watch(fd, wakeLoop, label));
        if (watcher != null) {
            watcher.start();
        }
    }

    private void watch(int fd, Runnable wakeLoop, String label) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(Libc.POLLFD, 2);
            MemorySegment counter = arena.allocate(8);
            long size = Libc.POLLFD.byteSize();
            fds.set(ValueLayout.JAVA_INT, 0, fd);
            fds.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            fds.set(ValueLayout.JAVA_INT, size, stop.fd());
            fds.set(ValueLayout.JAVA_SHORT, size + 4, Libc.POLLIN);
            while (!stopping) {
                fds.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
                fds.set(ValueLayout.JAVA_SHORT, size + 6, (short) 0);
                int rc = Libc.poll(fds, 2, -1);
                if (rc < 0 && rc != -Errno.EINTR) {
                    LOG.log(Level.ERROR, label + ": cannot wait for an attached driver queue: " + Errno.describe(-rc));
                    return;
                }
                if ((fds.get(ValueLayout.JAVA_SHORT, 6) & Libc.POLLIN) != 0) {
                    // Reset the counter before waking the loop: a completion posted after this rings it again, and
                    // the loop's reap looks at the completion ring itself, so none is missed.
                    Libc.read(fd, counter, 8);
                    wakeLoop.run();
                }
            }
        }
    }

    /** Stops watching; the queue itself stays open (its owner closes it). */
    @Override
    public void close() {
        stopping = true;
        stop.signal();
        if (watcher != null) {
            try {
                watcher.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        stop.close();
    }
}
