package io.vhostblk.server;

import io.vhostblk.linux.LinuxException;
import io.vhostblk.linux.UnixServerSocket;
import io.vhostblk.linux.UnixSocket;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The control socket: a Unix socket only our user may connect to (mode 0600), served by one
 * platform thread that accepts and one platform thread per connection (at most
 * {@link #MAX_CONNECTIONS}), each running {@link ControlProtocol} over lines.
 */
public final class ControlServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ControlServer.class.getName());
    /** Simultaneous connections; one more is told so and closed. */
    static final int MAX_CONNECTIONS = 16;
    private static final long JOIN_MILLIS = 2000;

    private final UnixServerSocket listening;
    private final ControlProtocol protocol;
    private final Set<ControlConnection> connections = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closing;

    private ControlServer(UnixServerSocket listening, ControlProtocol protocol) {
        this.listening = listening;
        this.protocol = protocol;
        this.acceptor = Thread.ofPlatform().name("control " + listening.path()).daemon().unstarted(this::acceptLoop);
    }

    /** Listens at {@code path} (mode 0600; a stale socket file is replaced) and starts serving. */
    public static ControlServer start(Path path, ControlProtocol protocol) throws IOException {
        ControlServer s = new ControlServer(UnixServerSocket.listen(path, true, 8), protocol);
        s.acceptor.start();
        LOG.log(Level.INFO, "control socket listening on " + path);
        return s;
    }

    /** The socket file. */
    public Path path() {
        return listening.path();
    }

    private void acceptLoop() {
        int serial = 0;
        while (!closing) {
            UnixSocket peer;
            try {
                peer = listening.accept();
            } catch (LinuxException e) {
                if (closing) {
                    return;
                }
                // EMFILE and the like: keep serving once descriptors are free again.
                LOG.log(Level.WARNING, "control socket " + path() + ": accept failed: " + e.getMessage());
                if (!pause()) {
                    return;
                }
                continue;
            }
            if (connections.size() >= MAX_CONNECTIONS) {
                ControlConnection.refuse(peer, "too many control connections (at most " + MAX_CONNECTIONS + ")");
                continue;
            }
            ControlConnection c = new ControlConnection(peer, protocol, connections::remove);
            connections.add(c);
            if (closing) {
                c.shutdown();
            }
            Thread.ofPlatform().name("control-" + (++serial)).daemon().start(c);
        }
    }

    private static boolean pause() {
        try {
            Thread.sleep(100);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Stops accepting, ends open connections (a command being run finishes first) and removes the socket file. */
    @Override
    public void close() throws IOException {
        closing = true;
        listening.shutdown();
        try {
            acceptor.join(JOIN_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (ControlConnection c : connections) {
            c.shutdown();
        }
        listening.close();
        LOG.log(Level.INFO, "control socket " + path() + " closed");
    }
}
