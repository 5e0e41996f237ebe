package io.vhostblk.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServiceNotifierTest {

    /** A bound datagram socket standing in for systemd's notify socket; returns its fd. */
    private static int listen(Arena arena, byte[] name) throws LinuxException {
        int fd = (int) Libc.check("socket", Libc.socket(UnixSocket.AF_UNIX,
                ServiceNotifier.SOCK_DGRAM | UnixSocket.SOCK_CLOEXEC, 0), "test");
        MemorySegment addr = ServiceNotifier.address(arena, name);
        int len = ServiceNotifier.addressLength(name);
        Libc.check("bind", Libc.bind(fd, addr, len), "test");
        return fd;
    }

    private static String receive(Arena arena, int fd) throws LinuxException {
        MemorySegment buf = arena.allocate(256);
        long n = Libc.check("read", Libc.read(fd, buf, 256), "test");
        byte[] bytes = new byte[(int) n];
        MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, bytes, 0, (int) n);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    @Test
    void sendsStateToAPathSocket(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("notify");
        try (Arena arena = Arena.ofConfined()) {
            int fd = listen(arena, path.toString().getBytes(StandardCharsets.UTF_8));
            try {
                ServiceNotifier.of(path.toString()).send("READY=1");
                assertEquals("READY=1", receive(arena, fd));
                ServiceNotifier.of(path.toString()).send("STOPPING=1");
                assertEquals("STOPPING=1", receive(arena, fd));
            } finally {
                Libc.close(fd);
            }
        }
    }

    @Test
    void sendsStateToAnAbstractSocket() throws Exception {
        String name = "@vhost-blk-notify-test-" + ProcessHandle.current().pid();
        try (Arena arena = Arena.ofConfined()) {
            int fd = listen(arena, name.getBytes(StandardCharsets.UTF_8));
            try {
                ServiceNotifier.of(name).send("READY=1\nSTATUS=serving");
                assertEquals("READY=1\nSTATUS=serving", receive(arena, fd));
            } finally {
                Libc.close(fd);
            }
        }
    }

    @Test
    void aMissingSocketIsAnErrorNamingIt(@TempDir Path dir) {
        Path path = dir.resolve("absent");
        LinuxException e = assertThrows(LinuxException.class, () -> ServiceNotifier.of(path.toString()).send("READY=1"));
        assertEquals(Errno.ENOENT, e.errno());
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains(path.toString()), e.getMessage());
    }

    @Test
    void noNotifySocketMeansNoNotifier() {
        if (System.getenv("NOTIFY_SOCKET") == null) {
            assertNull(ServiceNotifier.fromEnvironment());
        } else {
            assertEquals(System.getenv("NOTIFY_SOCKET"), ServiceNotifier.fromEnvironment().socketName());
        }
    }
}
