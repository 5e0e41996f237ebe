package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.RamDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.EOFException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The control socket over a real Unix socket: permissions, framing, bad input, limits, shutdown. */
@Timeout(30)
class ControlServerTest {
    private Path dir;
    private Path path;
    private RamDriver driver;
    private BlockDevice device;
    private ControlServer server;

    @BeforeEach
    void setUp() throws Exception {
        // sun_path holds 108 bytes: a short directory under /tmp, not the build directory.
        dir = Files.createTempDirectory(Path.of("/tmp"), "vbctl-");
        path = dir.resolve("ctl.sock");
        driver = RamDriver.create(1 << 20);
        device = new BlockDevice("disk0", "vm1", driver, true);
        DeviceRegistry registry = new DeviceRegistry();
        registry.register(device);
        server = ControlServer.start(path, new ControlProtocol(registry, new TestModules()));
    }

    @AfterEach
    void tearDown() throws Exception {
        server.close();
        driver.close();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static Map<?, ?> parse(String reply) throws Exception {
        return (Map<?, ?>) Json.parse(reply);
    }

    private static String error(String reply) throws Exception {
        Map<?, ?> m = parse(reply);
        assertEquals(false, m.get("ok"), reply);
        return (String) m.get("error");
    }

    @Test
    void theSocketFileIsOwnerOnly() throws Exception {
        assertEquals(EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
                Files.getPosixFilePermissions(path, LinkOption.NOFOLLOW_LINKS));
        Object mode = Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        assertEquals(0140600, (int) (Integer) mode, "a socket with mode 0600, got 0" + Integer.toOctalString((Integer) mode));
    }

    @Test
    void oneConnectionCarriesManyCommandsAndEachReplyIsOneLine() throws Exception {
        try (ControlClient c = ControlClient.connect(path)) {
            assertEquals(List.of("alpha"), parse(c.request("enable disk0 alpha")).get("chain"));
            assertEquals(List.of("beta", "alpha"), parse(c.request("enable disk0 beta 0")).get("chain"));
            assertEquals(List.of("beta", "alpha"), device.chain().names());
            Map<?, ?> devices = parse(c.request("devices"));
            assertEquals(true, devices.get("ok"));
            // Two commands in one write: two replies, in order.
            c.send("chain disk0\nmodules\n");
            assertTrue(parse(c.readLine()).containsKey("chain"));
            assertTrue(parse(c.readLine()).containsKey("modules"));
            // A command split across writes is one command.
            c.send("disa");
            Thread.sleep(50);
            c.send("ble disk0 beta\r\n");
            assertEquals(List.of("alpha"), parse(c.readLine()).get("chain"));
        }
    }

    @Test
    void garbageAndOverlongLinesGetErrorsAndTheConnectionGoesOn() throws Exception {
        try (ControlClient c = ControlClient.connect(path)) {
            assertEquals("unknown command '\u0000\u0001zz' (send 'help' for the list)", error(c.request("\u0000\u0001zz junk")));
            c.sendBytes(new byte[] {(byte) 0xff, (byte) 0xfe, 'a', '\n'});
            assertEquals("line is not valid UTF-8", error(c.readLine()));
            c.send("x".repeat(ControlConnection.MAX_LINE + 1000) + "\n");
            assertEquals("line longer than 4096 bytes; ignored up to its newline", error(c.readLine()));
            // Exactly the limit is still a line (an unknown command, not an overlong one).
            c.send("y".repeat(ControlConnection.MAX_LINE) + "\n");
            assertTrue(error(c.readLine()).startsWith("unknown command 'yyyy"));
            // A line far beyond the limit, in pieces: one error, then the next command works.
            for (int i = 0; i < 20; i++) {
                c.send("z".repeat(10_000));
            }
            c.send("\nhelp\n");
            assertEquals("line longer than 4096 bytes; ignored up to its newline", error(c.readLine()));
            assertEquals(true, parse(c.readLine()).get("ok"));
            assertEquals("empty command (send 'help' for the list)", error(c.request("")));
            assertEquals(true, parse(c.request("devices")).get("ok"));
        }
    }

    @Test
    void aClientThatLeavesMidLineDoesNotDisturbTheServer() throws Exception {
        try (ControlClient c = ControlClient.connect(path)) {
            c.send("enable disk0 al");
        }
        try (ControlClient c = ControlClient.connect(path)) {
            assertEquals(true, parse(c.request("devices")).get("ok"));
        }
        assertEquals(List.of(), device.chain().names(), "the half line was not run as a command");
    }

    @Test
    void connectionsAreServedAtTheSameTimeUpToTheLimit() throws Exception {
        List<ControlClient> open = new ArrayList<>();
        try {
            for (int i = 0; i < ControlServer.MAX_CONNECTIONS; i++) {
                ControlClient c = ControlClient.connect(path);
                open.add(c);
                assertEquals(true, parse(c.request("help")).get("ok"), "connection " + i);
            }
            // Every one of them is still being served, in any order.
            for (ControlClient c : open.reversed()) {
                assertEquals(true, parse(c.request("devices")).get("ok"));
            }
            try (ControlClient extra = ControlClient.connect(path)) {
                assertEquals("too many control connections (at most 16)", error(extra.readLine()));
                assertThrows(EOFException.class, extra::readLine);
            }
            open.removeFirst().close();
            // The slot frees once the server sees the close.
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (true) {
                try (ControlClient again = ControlClient.connect(path)) {
                    String reply = again.request("devices");
                    if (parse(reply).get("ok").equals(true)) {
                        break;
                    }
                    assertTrue(System.nanoTime() < deadline, "no slot freed: " + reply);
                } catch (java.io.IOException e) {
                    // Refused and closed before our command went out, or before its reply.
                    assertTrue(System.nanoTime() < deadline, "no slot freed: " + e);
                }
                Thread.sleep(20);
            }
        } finally {
            open.forEach(ControlClient::close);
        }
    }

    @Test
    void closingTheServerEndsConnectionsAndRemovesTheSocketFile() throws Exception {
        try (ControlClient c = ControlClient.connect(path)) {
            assertEquals(true, parse(c.request("help")).get("ok"));
            server.close();
            assertFalse(Files.exists(path, LinkOption.NOFOLLOW_LINKS));
            assertThrows(EOFException.class, c::readLine);
        }
    }

    @Test
    void aSecondServerOnALiveSocketIsRefusedAndTheFileIsReusableAfterClose() throws Exception {
        Exception e = assertThrows(java.io.IOException.class,
                () -> ControlServer.start(path, new ControlProtocol(new DeviceRegistry(), ModuleSource.NONE)));
        assertTrue(e.getMessage().contains("another process is listening"), e.getMessage());
        try (ControlClient c = ControlClient.connect(path)) {
            assertEquals(true, parse(c.request("devices")).get("ok"), "the first server still serves");
        }
        server.close();
        server = ControlServer.start(path, new ControlProtocol(new DeviceRegistry(), ModuleSource.NONE));
        try (ControlClient c = ControlClient.connect(path)) {
            assertEquals(List.of(), parse(c.request("devices")).get("devices"));
        }
    }
}
