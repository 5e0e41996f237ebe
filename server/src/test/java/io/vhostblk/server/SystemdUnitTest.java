package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.linux.Libc;
import io.vhostblk.testsupport.ServerJvm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The systemd unit in packaging/ is valid, and serve speaks its Type=notify protocol. */
class SystemdUnitTest {
    private static final Path UNIT = Path.of("..", "packaging", "systemd", "vhost-blk@.service");
    private static final Path LAUNCHER = Path.of("..", "packaging", "vhost-blk");

    @Test
    void theUnitPassesSystemdAnalyzeVerify(@TempDir Path dir) throws Exception {
        Path tool = Path.of("/usr/bin/systemd-analyze");
        if (!Files.isExecutable(tool)) {
            fail("systemd-analyze is missing: install the Debian package systemd (bin/run-tests does)");
        }
        String unit = Files.readString(UNIT);
        assertTrue(unit.contains("ExecStart=/usr/lib/vhost-blk/vhost-blk serve"), unit);
        // verify checks that ExecStart's program exists: point it at the launcher that install.sh puts there.
        Files.writeString(dir.resolve("vhost-blk@.service"), unit.replace("/usr/lib/vhost-blk/vhost-blk",
                LAUNCHER.toAbsolutePath().normalize().toString()));
        Files.createSymbolicLink(dir.resolve("vhost-blk@web1.service"), Path.of("vhost-blk@.service"));
        Process p = new ProcessBuilder(tool.toString(), "verify", "./vhost-blk@web1.service")
                .directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "systemd-analyze verify did not finish");
        assertEquals(0, p.exitValue(), out);
        assertEquals("", out.strip(), "systemd-analyze verify warned");
        for (String key : List.of("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                "CapabilityBoundingSet=", "ReadWritePaths=", "Restart=on-failure", "Before=libvirtd.service")) {
            assertTrue(unit.lines().anyMatch(l -> l.startsWith(key)), "the unit lacks " + key);
        }
    }

    @Test
    void serveTellsTheServiceManagerOnceItListensAndWhenItStops(@TempDir Path dir) throws Exception {
        Path notify = dir.resolve("notify");
        Path socket = dir.resolve("vb.sock");
        try (Arena arena = Arena.ofConfined()) {
            int fd = (int) Libc.check("socket", Libc.socket(1 /* AF_UNIX */, 2 /* SOCK_DGRAM */ | 02000000, 0), "test");
            try {
                MemorySegment addr = arena.allocate(110, 2);
                addr.set(ValueLayout.JAVA_SHORT, 0, (short) 1);
                byte[] name = notify.toString().getBytes(StandardCharsets.UTF_8);
                MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
                Libc.check("bind", Libc.bind(fd, addr, 110), notify.toString());

                String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
                List<String> cmd = new ArrayList<>(List.of(java, ServerJvm.OPTIONS, "-cp",
                        System.getProperty("java.class.path"), VhostBlkMain.class.getName(), "serve",
                        "--socket", socket.toString(), "--driver", "ram", "--size", "1M"));
                ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                        .redirectOutput(dir.resolve("serve.log").toFile());
                pb.environment().put("NOTIFY_SOCKET", notify.toString());
                Process server = pb.start();
                try {
                    String ready = receive(arena, fd, 60_000, dir);
                    assertTrue(ready.startsWith("READY=1\n"), ready);
                    assertTrue(Files.exists(socket), "READY=1 came before the vhost-user socket listened");
                    server.destroy(); // SIGTERM
                    assertEquals("STOPPING=1", receive(arena, fd, 60_000, dir));
                    assertTrue(server.waitFor(60, TimeUnit.SECONDS), "serve did not stop after SIGTERM");
                    assertEquals(0, server.exitValue(), Files.readString(dir.resolve("serve.log")));
                } finally {
                    if (server.isAlive()) {
                        server.destroyForcibly();
                        server.waitFor(10, TimeUnit.SECONDS);
                    }
                }
            } finally {
                Libc.close(fd);
            }
        }
    }

    @Test
    void aSigtermAsSoonAsTheSocketListensStopsCleanly(@TempDir Path dir) throws Exception {
        // systemd (or a script) may stop serve the moment its socket exists: the stop must still be orderly.
        Path socket = dir.resolve("vb.sock");
        Path log = dir.resolve("serve.log");
        Process server = new ProcessBuilder(ServerJvm.java(), ServerJvm.OPTIONS, "-cp", System.getProperty("java.class.path"),
                VhostBlkMain.class.getName(), "serve", "--socket", socket.toString(), "--driver", "ram", "--size", "1M")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket)) {
                assertTrue(server.isAlive(), () -> "serve exited before listening:\n" + read(log));
                assertTrue(System.nanoTime() < deadline, () -> "serve did not listen within 60 s:\n" + read(log));
                Thread.sleep(1);
            }
            server.destroy(); // SIGTERM
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "serve did not stop after SIGTERM");
            assertEquals(0, server.exitValue(), read(log));
            assertTrue(read(log).contains("device ram: vhost-user server closed"), read(log));
        } finally {
            if (server.isAlive()) {
                server.destroyForcibly();
                server.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (java.io.IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }

    /** One datagram, waited for at most {@code millis}. */
    private static String receive(Arena arena, int fd, int millis, Path dir) throws Exception {
        MemorySegment pollfd = arena.allocate(Libc.POLLFD);
        pollfd.set(ValueLayout.JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
        int n = Libc.poll(pollfd, 1, millis);
        if (n <= 0) {
            fail("no notification within " + millis + " ms (poll " + n + "); serve log:\n"
                    + Files.readString(dir.resolve("serve.log")));
        }
        MemorySegment buf = arena.allocate(512);
        long len = Libc.check("read", Libc.read(fd, buf, 512), "notify socket");
        byte[] bytes = new byte[(int) len];
        MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, bytes, 0, (int) len);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
