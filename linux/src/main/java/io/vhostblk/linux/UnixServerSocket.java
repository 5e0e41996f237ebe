package io.vhostblk.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A listening AF_UNIX stream socket bound to a path. {@link #close()} removes the socket file;
 * {@link #shutdown()} wakes a thread blocked in {@link #accept()} from any other thread.
 */
public final class UnixServerSocket implements AutoCloseable {
    private static final int EADDRINUSE = 98;
    private static final int ECONNREFUSED = 111;

    private static final AtomicLong TEMPORARY_NAMES = new AtomicLong();

    private final Object lock = new Object();
    private final Path path;
    private int fd;

    private UnixServerSocket(int fd, Path path) {
        this.fd = fd;
        this.path = path;
    }

    /**
     * Binds and listens at {@code path}. A socket file left there by a dead process is removed
     * first; a socket something still listens on, or any other kind of file, is refused. The file
     * appears at {@code path} only once it listens with its final mode: the socket is bound under a
     * temporary name beside it and renamed, so a client that sees the file never meets ECONNREFUSED
     * or a moment of umask permissions.
     *
     * @param ownerOnly restrict the socket file to mode 0600 (only our user may connect)
     */
    public static UnixServerSocket listen(Path path, boolean ownerOnly, int backlog) throws IOException {
        removeStaleSocket(path);
        Path temporary = temporaryName(path);
        Files.deleteIfExists(temporary); // left by a process of ours that died between bind and rename
        try (Arena arena = Arena.ofConfined()) {
            UnixSocket.sockaddr(arena, path); // a path too long is refused under its own name
            if (temporary.toString().getBytes(StandardCharsets.UTF_8).length >= UnixSocket.SUN_PATH_SIZE) {
                temporary = path; // no room for a longer name: bind in place (a client may meet ECONNREFUSED)
            }
        }
        int fd = (int) Libc.check("socket", Libc.socket(UnixSocket.AF_UNIX, UnixSocket.SOCK_STREAM | UnixSocket.SOCK_CLOEXEC, 0), "AF_UNIX");
        boolean bound = false;
        try (Arena arena = Arena.ofConfined()) {
            Libc.check("bind", Libc.bind(fd, UnixSocket.sockaddr(arena, temporary), UnixSocket.SOCKADDR_UN_SIZE), temporary.toString());
            bound = true;
            if (ownerOnly) {
                Files.setPosixFilePermissions(temporary, EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE));
            }
            Libc.check("listen", Libc.listen(fd, backlog), temporary.toString());
            if (!temporary.equals(path)) {
                Files.move(temporary, path, StandardCopyOption.ATOMIC_MOVE);
            }
            return new UnixServerSocket(fd, path);
        } catch (IOException | RuntimeException e) {
            Libc.close(fd);
            if (bound) {
                Files.deleteIfExists(temporary);
            }
            throw e;
        }
    }

    /**
     * A name beside {@code path} for binding before the rename: same directory (rename stays atomic),
     * short (sockaddr_un holds 107 bytes), unique to this process.
     */
    static Path temporaryName(Path path) {
        return path.resolveSibling("." + ProcessHandle.current().pid() + "-" + TEMPORARY_NAMES.incrementAndGet() + ".sock");
    }

    private static void removeStaleSocket(Path path) throws IOException {
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (!isSocket(path)) {
            throw new LinuxException("bind", Errno.EEXIST, path + " exists and is not a socket; refusing to replace it");
        }
        UnixSocket probe;
        try {
            probe = UnixSocket.connect(path);
        } catch (LinuxException e) {
            if (e.errno() != ECONNREFUSED) {
                throw e;
            }
            // Nobody listens: the socket's owner is gone, so the file is stale.
            Files.deleteIfExists(path);
            return;
        }
        probe.close();
        throw new LinuxException("bind", EADDRINUSE, "another process is listening on " + path);
    }

    private static boolean isSocket(Path path) throws IOException {
        Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return mode instanceof Integer m && (m & 0170000) == 0140000;
    }

    /** The socket file's path. */
    public Path path() {
        return path;
    }

    /** The listening descriptor (for polling), or -1 once closed. */
    public int fd() {
        synchronized (lock) {
            return fd;
        }
    }

    /**
     * Accepts one connection (close-on-exec), retrying EINTR. After {@link #shutdown()} this
     * fails with a {@link LinuxException} ({@code EINVAL}).
     */
    public UnixSocket accept() throws LinuxException {
        int listening = fd();
        if (listening < 0) {
            throw new LinuxException("accept4", Errno.EBADF, path + " is closed");
        }
        int rc;
        do {
            rc = Libc.accept4(listening, UnixSocket.SOCK_CLOEXEC);
        } while (rc == -Errno.EINTR);
        return new UnixSocket((int) Libc.check("accept4", rc, path.toString()));
    }

    /** Wakes any thread blocked in {@link #accept()}; later accepts fail. Safe from any thread. */
    public void shutdown() {
        synchronized (lock) {
            if (fd >= 0) {
                Libc.shutdown(fd, UnixSocket.SHUT_RDWR);
            }
        }
    }

    /** Closes the socket and deletes its file; idempotent. */
    @Override
    public void close() throws IOException {
        synchronized (lock) {
            if (fd < 0) {
                return;
            }
            Libc.close(fd);
            fd = -1;
        }
        Files.deleteIfExists(path);
    }
}
