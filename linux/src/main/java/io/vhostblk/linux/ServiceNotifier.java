package io.vhostblk.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/**
 * systemd's service notification ({@code sd_notify}): a datagram such as {@code READY=1} sent to the
 * AF_UNIX socket named by {@code $NOTIFY_SOCKET}, so a {@code Type=notify} unit is marked started
 * only once our sockets listen. A name starting with {@code @} is in the abstract namespace.
 */
public final class ServiceNotifier {
    static final int SOCK_DGRAM = 2;

    private final String socketName;

    private ServiceNotifier(String socketName) {
        this.socketName = socketName;
    }

    /** The notifier of this process's service manager, or null when none asked ($NOTIFY_SOCKET unset). */
    public static ServiceNotifier fromEnvironment() {
        String name = System.getenv("NOTIFY_SOCKET");
        return name == null || name.isEmpty() ? null : new ServiceNotifier(name);
    }

    /** A notifier for the socket {@code name} (a path, or {@code @name} for the abstract namespace). */
    public static ServiceNotifier of(String name) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("notify socket name is empty");
        }
        return new ServiceNotifier(name);
    }

    /** The socket this notifier sends to. */
    public String socketName() {
        return socketName;
    }

    /** The {@code sockaddr_un} of a socket name; {@code @name} becomes an abstract address (leading NUL). */
    static MemorySegment address(Arena arena, byte[] name) {
        MemorySegment addr = arena.allocate(UnixSocket.SOCKADDR_UN_SIZE, 2);
        addr.set(ValueLayout.JAVA_SHORT, 0, (short) UnixSocket.AF_UNIX);
        MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
        if (name[0] == '@') {
            addr.set(ValueLayout.JAVA_BYTE, 2, (byte) 0);
        }
        return addr;
    }

    /** How many bytes of {@link #address} count: an abstract address is exactly its bytes, a path may use the whole struct. */
    static int addressLength(byte[] name) {
        return name[0] == '@' ? 2 + name.length : UnixSocket.SOCKADDR_UN_SIZE;
    }

    /** Sends one notification, for example {@code "READY=1"} or {@code "STOPPING=1"}. */
    public void send(String state) throws LinuxException {
        byte[] name = socketName.getBytes(StandardCharsets.UTF_8);
        if (name.length >= UnixSocket.SUN_PATH_SIZE) {
            throw new LinuxException("sd_notify", Errno.EINVAL,
                    "NOTIFY_SOCKET is " + name.length + " bytes, longer than a socket address: " + socketName);
        }
        int fd = (int) Libc.check("socket", Libc.socket(UnixSocket.AF_UNIX,
                SOCK_DGRAM | UnixSocket.SOCK_CLOEXEC, 0), "AF_UNIX datagram");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = address(arena, name);
            int addrLen = addressLength(name);
            int rc;
            do {
                rc = Libc.connect(fd, addr, addrLen);
            } while (rc == -Errno.EINTR);
            Libc.check("connect", rc, "NOTIFY_SOCKET " + socketName);
            byte[] payload = state.getBytes(StandardCharsets.UTF_8);
            MemorySegment buf = arena.allocate(payload.length);
            MemorySegment.copy(payload, 0, buf, ValueLayout.JAVA_BYTE, 0, payload.length);
            long sent;
            do {
                sent = Libc.write(fd, buf, payload.length);
            } while (sent == -Errno.EINTR);
            Libc.check("send", sent, "NOTIFY_SOCKET " + socketName);
        } finally {
            Libc.close(fd);
        }
    }
}
