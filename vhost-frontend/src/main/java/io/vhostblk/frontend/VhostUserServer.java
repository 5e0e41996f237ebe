package io.vhostblk.frontend;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.linux.UnixServerSocket;
import io.vhostblk.linux.UnixSocket;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * Serves one device's vhost-user socket: listens on a path and runs one front-end session at a
 * time on a platform thread named {@code vhost-user-<device>}.
 *
 * <p>While a front-end is connected, another one that connects waits in the backlog for up to
 * {@link #TAKEOVER_GRACE_MILLIS}: a front-end that reconnects at once (QEMU's reconnect, a
 * restarted client) usually arrives before the server has read its old connection's end of
 * stream, and must be served once that session has torn down. If the old connection is still
 * alive after the grace, the newcomer is accepted and closed (it sees end of stream), so it
 * fails instead of hanging. Once one newcomer has been refused, the connected front-end has shown
 * it is not going away, so later newcomers in the same session wait only
 * {@link #REPEAT_GRACE_MILLIS} (a flood of connections costs the flood, not a second each). The connection is always read before the listener. When a session
 * ends — the front-end disconnected, or sent a message that breaks the protocol — its queues
 * are stopped, the device is reset, the reason is logged, and the server waits for the next
 * front-end (QEMU's reconnect). {@link #close()} stops everything promptly from any thread.
 */
public final class VhostUserServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserServer.class.getName());

    /** How long a second front-end waits for the connected one to go away before it is refused. */
    static final int TAKEOVER_GRACE_MILLIS = 1000;
    /** The wait for newcomers after one was refused in the same session (still long enough for a reconnect's race). */
    static final int REPEAT_GRACE_MILLIS = 50;

    private static final int WAKE_TIMEOUT = -1;
    private static final int WAKE_STOP = 0;
    private static final int WAKE_LISTENER = 1;
    private static final int WAKE_CONNECTION = 2;
    /** Order in which ready descriptors are served: a departing front-end's end of stream before a newcomer. */
    private static final int[] PRIORITY = {WAKE_STOP, WAKE_CONNECTION, WAKE_LISTENER};

    private final String deviceId;
    private final VhostUserDevice device;
    private final UnixServerSocket listener;
    private final EventFd stopSignal;
    private final Thread thread;
    private final Object connectionLock = new Object();
    private UnixSocket connection;
    private volatile boolean stopping;
    private volatile long sessions;
    private boolean closed;

    private VhostUserServer(String deviceId, VhostUserDevice device, UnixServerSocket listener, EventFd stopSignal) {
        this.deviceId = deviceId;
        this.device = device;
        this.listener = listener;
        this.stopSignal = stopSignal;
        this.thread = Thread.ofPlatform().name("vhost-user-" + deviceId).unstarted(this::run);
    }

    /**
     * Listens on {@code socketPath} (a stale socket file is replaced, anything else refused) and
     * starts serving.
     *
     * @param ownerOnly make the socket file mode 0600
     */
    public static VhostUserServer start(String deviceId, Path socketPath, boolean ownerOnly, VhostUserDevice device)
            throws IOException {
        EventFd stop = EventFd.create(true);
        UnixServerSocket listener;
        try {
            // Backlog 1: one front-end at a time; a second is refused by the serving thread.
            listener = UnixServerSocket.listen(socketPath, ownerOnly, 1);
        } catch (IOException | RuntimeException e) {
            stop.close();
            throw e;
        }
        VhostUserServer server = new VhostUserServer(deviceId, device, listener, stop);
        server.thread.start();
        LOG.log(Level.INFO, "device " + deviceId + ": vhost-user socket listening on " + socketPath);
        return server;
    }

    public Path socketPath() {
        return listener.path();
    }

    public String deviceId() {
        return deviceId;
    }

    /** Whether a front-end is connected right now. */
    public boolean connected() {
        synchronized (connectionLock) {
            return connection != null;
        }
    }

    /** How many front-end sessions have ended so far (for tests and status). */
    public long sessionsEnded() {
        return sessions;
    }

    private void run() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollFds = arena.allocate(Libc.POLLFD, 3);
            while (!stopping) {
                int wake = await(pollFds, -1, true, -1);
                if (wake == WAKE_STOP) {
                    break;
                }
                UnixSocket accepted = listener.accept();
                serve(accepted, pollFds);
            }
        } catch (LinuxException e) {
            if (!stopping) {
                LOG.log(Level.ERROR, "device " + deviceId + ": vhost-user server stopped: " + e.getMessage(), e);
            }
        } catch (RuntimeException | Error e) {
            LOG.log(Level.ERROR, "device " + deviceId + ": vhost-user server failed", e);
            throw e;
        }
    }

    /** Runs one session until the front-end goes away, breaks the protocol, or the server stops. */
    private void serve(UnixSocket socket, MemorySegment pollFds) throws LinuxException {
        synchronized (connectionLock) {
            if (stopping) {
                socket.close();
                return;
            }
            connection = socket;
        }
        LOG.log(Level.INFO, "device " + deviceId + ": front-end connected");
        String reason = "front-end disconnected";
        VhostUserChannel channel = new VhostUserChannel(socket);
        VhostUserSession session = new VhostUserSession(deviceId, device, channel);
        // When a second front-end is waiting: the System.nanoTime() at which it is refused.
        long refuseAt = 0;
        boolean newcomerWaiting = false;
        boolean refusedOne = false;
        try {
            while (true) {
                int timeout = newcomerWaiting
                        ? (int) Math.max(0, (refuseAt - System.nanoTime() + 999_999) / 1_000_000) : -1;
                int wake = await(pollFds, socket.fd(), !newcomerWaiting, timeout);
                if (wake == WAKE_STOP) {
                    reason = "server stopping";
                    break;
                }
                if (wake == WAKE_LISTENER) {
                    // Probably the same front-end reconnecting: give its old connection time to end.
                    newcomerWaiting = true;
                    refuseAt = System.nanoTime() + (refusedOne ? REPEAT_GRACE_MILLIS : TAKEOVER_GRACE_MILLIS) * 1_000_000L;
                    continue;
                }
                if (wake == WAKE_TIMEOUT) {
                    refuseSecondFrontEnd();
                    newcomerWaiting = false;
                    refusedOne = true;
                    continue;
                }
                if (!session.serveOne()) {
                    if (stopping) {
                        reason = "server stopping";
                    }
                    break;
                }
            }
            LOG.log(Level.INFO, "device " + deviceId + ": session ended: " + reason);
        } catch (VhostUserException e) {
            if (stopping) {
                // close() shut the socket down under a half-read message; that is not the front-end's fault.
                LOG.log(Level.INFO, "device " + deviceId + ": session ended: server stopping");
            } else {
                LOG.log(Level.WARNING, "device " + deviceId + ": closing connection: " + describe(e));
            }
        } catch (IOException e) {
            LOG.log(Level.WARNING, "device " + deviceId + ": closing connection: " + (stopping ? "server stopping: " : "")
                    + e.getMessage());
        } catch (RuntimeException e) {
            // A bug on our side, not the front-end's: log it loudly but keep serving the socket.
            LOG.log(Level.ERROR, "device " + deviceId + ": closing connection after an internal error", e);
        } finally {
            try {
                session.close();
            } catch (RuntimeException e) {
                LOG.log(Level.ERROR, "device " + deviceId + ": stopping the session's queues failed", e);
            } finally {
                synchronized (connectionLock) {
                    connection = null;
                    channel.close();
                }
                sessions++;
            }
        }
    }

    private static String describe(VhostUserException e) {
        StringBuilder sb = new StringBuilder(e.getMessage());
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            if (c.getMessage() != null && sb.indexOf(c.getMessage()) < 0) {
                sb.append(": ").append(c.getMessage());
            }
        }
        return sb.toString();
    }

    private void refuseSecondFrontEnd() throws LinuxException {
        UnixSocket second = listener.accept();
        second.close();
        LOG.log(Level.WARNING, "device " + deviceId + ": refused a second front-end connection (one is already connected)");
    }

    /**
     * Waits until the stop signal, (when {@code connectionFd >= 0}) the connection or (when
     * {@code watchListener}) the listener is readable, in that priority, or {@code timeoutMillis}
     * passed ({@link #WAKE_TIMEOUT}; -1 waits for ever).
     */
    private int await(MemorySegment pollFds, int connectionFd, boolean watchListener, int timeoutMillis)
            throws LinuxException {
        setPollFd(pollFds, WAKE_STOP, stopSignal.fd());
        // poll ignores negative descriptors.
        setPollFd(pollFds, WAKE_LISTENER, watchListener ? listener.fd() : -1);
        setPollFd(pollFds, WAKE_CONNECTION, connectionFd);
        while (true) {
            int rc = Libc.poll(pollFds, 3, timeoutMillis);
            if (rc == -Errno.EINTR) {
                continue;
            }
            Libc.check("poll", rc, "vhost-user socket of device " + deviceId);
            for (int i : PRIORITY) {
                short revents = pollFds.getAtIndex(ValueLayout.JAVA_SHORT, i * 4L + 3);
                if (revents != 0) {
                    return i;
                }
            }
            if (rc == 0) {
                return WAKE_TIMEOUT;
            }
        }
    }

    private static void setPollFd(MemorySegment pollFds, int i, int fd) {
        pollFds.setAtIndex(ValueLayout.JAVA_INT, i * 2L, fd);
        pollFds.setAtIndex(ValueLayout.JAVA_SHORT, i * 4L + 2, Libc.POLLIN);
        pollFds.setAtIndex(ValueLayout.JAVA_SHORT, i * 4L + 3, (short) 0);
    }

    /**
     * Stops serving: ends the current session (its queues drain and stop, the device is reset),
     * closes the listening socket and deletes the socket file. Safe from any thread, including a
     * signal handler's; returns once the serving thread has finished. Idempotent.
     */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        stopping = true;
        stopSignal.signal();
        synchronized (connectionLock) {
            if (connection != null) {
                // Wakes a session blocked in the middle of a message the front-end never finishes.
                connection.shutdown();
            }
        }
        if (Thread.currentThread() != thread) {
            boolean interrupted = false;
            while (thread.isAlive()) {
                try {
                    thread.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        closed = true;
        try {
            listener.close();
        } finally {
            stopSignal.close();
        }
        LOG.log(Level.INFO, "device " + deviceId + ": vhost-user server closed, removed " + listener.path());
    }
}
