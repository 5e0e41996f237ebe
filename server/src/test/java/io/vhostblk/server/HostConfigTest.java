package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vhostblk.drivers.DriverKind;

import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;

class HostConfigTest {
    private static final Path FILE = Path.of("/etc/vhost-blk/host.conf");

    private static HostConfig parse(String text) throws HostConfig.ConfigException {
        return HostConfig.parse(FILE, text.lines().toList());
    }

    private static String error(String text) {
        return assertThrows(HostConfig.ConfigException.class, () -> parse(text)).getMessage();
    }

    @Test
    void devicesTakeServesOptionsWithPathsBesideTheFile() throws Exception {
        HostConfig c = parse("""
                control = /run/vhost-blk/ctl   # the process's control socket
                [device web1-root]
                vm = web1
                socket = web1.sock
                disk = /var/lib/vhost-blk/web1.img
                queues = 2
                read-only = true
                writeback = false
                direct = no
                driver = file
                [device web2]
                socket = /run/vhost-blk/web2.sock
                disk = web2.img
                size = 1G
                """);
        assertEquals(Path.of("/run/vhost-blk/ctl"), c.control());
        assertEquals(2, c.devices().size());
        ServeOptions a = c.devices().get(0).options();
        assertEquals("web1-root", a.deviceId());
        assertEquals("web1", a.vmName());
        assertEquals(Path.of("/etc/vhost-blk/web1.sock"), a.socket());
        assertEquals(2, a.queues());
        assertTrue(a.readOnly());
        assertFalse(a.writeback());
        assertFalse(a.direct());
        assertEquals(DriverKind.FILE, a.driver());
        assertEquals(2, c.devices().get(0).line());
        ServeOptions b = c.devices().get(1).options();
        assertEquals(Path.of("/etc/vhost-blk/web2.img"), b.disk());
        assertEquals(1L << 30, b.size());
        assertTrue(b.writeback());
        assertNull(b.policy());
    }

    @Test
    void anRbdDeviceKeepsItsImageNameAndResolvesItsClientFiles() throws Exception {
        HostConfig c = parse("""
                [device vol1]
                socket = vol1.sock
                disk = rbd:volumes/vol1@gold
                rbd-conf = ceph/c2.conf
                rbd-id = vhost
                rbd-keyring = /etc/ceph/c2.client.vhost.keyring
                rbd-timeout = 90
                """);
        ServeOptions o = c.devices().get(0).options();
        assertEquals(DriverKind.RBD, o.driver());
        assertEquals("rbd:volumes/vol1@gold", o.disk().toString());
        assertEquals(new io.vhostblk.drivers.RbdClient(Path.of("/etc/vhost-blk/ceph/c2.conf"), "vhost",
                Path.of("/etc/ceph/c2.client.vhost.keyring"), 90), o.rbd());
    }

    @Test
    void errorsNameTheFileTheLineAndTheField() {
        assertEquals("/etc/vhost-blk/host.conf:3: device a: queues: 0 is outside 1..64",
                error("[device a]\nsocket = a.sock\nqueues = 0\ndisk = a.img\n"));
        assertEquals("/etc/vhost-blk/host.conf:3: device a: colour: unknown key",
                error("[device a]\nsocket = a.sock\ncolour = blue\ndisk = a.img\n"));
        assertEquals("/etc/vhost-blk/host.conf:2: device a: read-only: 'maybe' is not true or false",
                error("[device a]\nread-only = maybe\n"));
        assertTrue(error("[device a]\ndisk = a.img\n").startsWith("/etc/vhost-blk/host.conf:1: [device a]: socket is required"),
                error("[device a]\ndisk = a.img\n"));
        assertEquals("/etc/vhost-blk/host.conf:3: [device a]: declared twice (first at line 1)",
                error("[device a]\nsocket = s\n[device a]\n"));
        assertEquals("/etc/vhost-blk/host.conf:1: socket: unknown key before the first [device ID] section (there: control, metrics)",
                error("socket = s\n"));
        assertEquals("/etc/vhost-blk/host.conf:1: [volume a]: unknown section; the only kind is [device ID]",
                error("[volume a]\n"));
        assertEquals("/etc/vhost-blk/host.conf:2: device a: id: the id is the section's name ([device ID])",
                error("[device a]\nid = b\n"));
        assertEquals("/etc/vhost-blk/host.conf: no [device ID] section: a host configuration serves at least one device",
                error("control = c\n"));
        assertEquals("/etc/vhost-blk/host.conf:2: device a: queues: no value after '='", error("[device a]\nqueues =\n"));
        assertEquals("/etc/vhost-blk/host.conf:2: device a: metrics: is the process's: set it before the first [device ID] section",
                error("[device a]\nmetrics = 9750\n"));
        assertEquals("/etc/vhost-blk/host.conf:1: metrics: 'web' is not a port number",
                error("metrics = web\n[device a]\nsocket = s\ndisk = d\n"));
        // Found by HostConfigFuzzTest: a NUL byte in a path escaped as an InvalidPathException.
        assertEquals("/etc/vhost-blk/host.conf:3: device a: disk: is not a usable path (Nul character not allowed)",
                error("[device a]\nsocket = s\ndisk = a\u0000b\n"));
        assertEquals("/etc/vhost-blk/host.conf:1: control: is not a usable path (Nul character not allowed)",
                error("control = \u0000\n[device a]\nsocket = s\ndisk = d\n"));
    }

    @Test
    void theSameSocketTwiceIsRefusedAtTheSecondDevice() {
        assertEquals("/etc/vhost-blk/host.conf:5: device b: socket: already the socket of device a",
                error("[device a]\nsocket = s\ndisk = a\n[device b]\nsocket = s\ndisk = b\n"));
    }

    @Test
    void commandLineOptionsOtherThanControlAreRefusedWithAConfig() {
        UsageException e = assertThrows(UsageException.class,
                () -> ServeCommand.parse(List.of("--config", "/x", "--queues", "2"), System.out));
        assertTrue(e.getMessage().contains("--queues belongs in a [device ID] section"), e.getMessage());
    }
}
