package io.vhostblk.server;

import io.vhostblk.drivers.DriverKind;
import io.vhostblk.drivers.RbdClient;
import io.vhostblk.testsupport.ServerJvm;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ServeRbdOptionsTest {
    private static ServeOptions parse(String disk, String... extra) throws UsageException {
        List<String> args = new ArrayList<>(List.of("--socket", "/tmp/s.sock", "--disk", disk));
        args.addAll(List.of(extra));
        return ServeOptions.parse(args);
    }

    @Test
    void anRbdDiskWithItsClientSettings() throws Exception {
        ServeOptions o = parse("rbd:volumes/vm1-root@base", "--driver", "rbd", "--rbd-conf", "/etc/ceph/c2.conf",
                "--rbd-id", "vhost", "--rbd-keyring", "/etc/ceph/c2.client.vhost.keyring", "--rbd-timeout", "5");
        assertEquals(DriverKind.RBD, o.driver());
        assertEquals("rbd:volumes/vm1-root@base", o.disk().toString());
        assertEquals("vm1-root", o.deviceId());
        assertEquals(new RbdClient(Path.of("/etc/ceph/c2.conf"), "vhost", Path.of("/etc/ceph/c2.client.vhost.keyring"), 5), o.rbd());
    }

    @Test
    void anRbdDiskImpliesTheRbdDriverAndLibradosDefaults() throws Exception {
        ServeOptions o = parse("rbd:rbd/img");
        assertEquals(DriverKind.RBD, o.driver());
        assertEquals(RbdClient.DEFAULTS, o.rbd());
    }

    @Test
    void badRbdOptionsAreNamed() {
        assertEquals("--disk rbd:rbd/img is an RBD image; it needs --driver rbd, not file",
                assertThrows(UsageException.class, () -> parse("rbd:rbd/img", "--driver", "file")).getMessage());
        assertEquals("--disk: 'rbd:img': expected rbd:POOL/IMAGE[@SNAP] (one '/' between a pool and an image)",
                assertThrows(UsageException.class, () -> parse("rbd:img")).getMessage());
        assertEquals("--rbd-conf, --rbd-id and --rbd-keyring need --driver rbd",
                assertThrows(UsageException.class, () -> parse("/tmp/d.img", "--rbd-id", "x")).getMessage());
        assertEquals("--rbd-timeout: 0 is outside 1..86400",
                assertThrows(UsageException.class, () -> parse("rbd:rbd/img", "--rbd-timeout", "0")).getMessage());
    }

    @Test
    void aMissingLibrbdStopsTheStartNamingTheLibraryAndThePackage() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "vb-rbd-");
        try {
            String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
            Process server = new ProcessBuilder(java, ServerJvm.OPTIONS,
                    "-Dvhostblk.librbd=" + dir.resolve("librbd.so.1"), "-cp", System.getProperty("java.class.path"),
                    VhostBlkMain.class.getName(), "serve", "--socket", dir.resolve("s.sock").toString(),
                    "--disk", "rbd:rbd/img").redirectErrorStream(true).start();
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "the server must give up at once");
            String output = new String(server.getInputStream().readAllBytes());
            assertNotEquals(0, server.exitValue(), output);
            assertTrue(output.contains("cannot load " + dir.resolve("librbd.so.1") + " (install Debian's librbd1 package)"), output);
            assertTrue(Files.notExists(dir.resolve("s.sock")), "no socket for a device that cannot start");
        } finally {
            Files.deleteIfExists(dir.resolve("s.sock"));
            Files.delete(dir);
        }
    }
}
