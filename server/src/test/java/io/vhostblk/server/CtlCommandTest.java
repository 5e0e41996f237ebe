package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.RamDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code vhost-blk ctl}: output and exit status against a live control socket. */
@Timeout(30)
class CtlCommandTest {
    private Path dir;
    private Path path;
    private RamDriver driver;
    private BlockDevice device;
    private ControlServer server;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    @BeforeEach
    void setUp() throws Exception {
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
        Files.deleteIfExists(path);
        Files.deleteIfExists(dir);
    }

    private int ctl(String... words) {
        out.reset();
        err.reset();
        List<String> args = new ArrayList<>(List.of("ctl", "--control", path.toString()));
        args.addAll(List.of(words));
        return run(args);
    }

    private int run(List<String> args) {
        out.reset();
        err.reset();
        return VhostBlkMain.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aSuccessfulCommandPrintsTheReplyIndentedAndExitsZero() throws Exception {
        assertEquals(0, ctl("enable", "disk0", "alpha"));
        assertEquals(List.of("alpha"), device.chain().names());
        assertEquals(0, ctl("devices"), err());
        String printed = out();
        assertTrue(printed.contains("\n  \"devices\": [\n"), printed);
        Map<?, ?> parsed = (Map<?, ?>) Json.parse(printed);
        assertEquals(List.of("devices"), List.copyOf(parsed.keySet()), "the ok field is implied by the exit status");
        Map<?, ?> d = (Map<?, ?>) ((List<?>) parsed.get("devices")).getFirst();
        assertEquals("disk0", d.get("id"));
        assertEquals(List.of("alpha"), d.get("chain"));
        assertEquals("", err());
    }

    @Test
    void aRefusedCommandPrintsTheServersReasonAndExitsOne() {
        assertEquals(CtlCommand.COMMAND_FAILED, ctl("chain", "nope"));
        assertEquals("vhost-blk ctl: chain: no device 'nope' (devices: disk0)\n", err());
        assertEquals("", out());
        assertEquals(CtlCommand.COMMAND_FAILED, ctl("disable", "disk0", "alpha"));
        assertTrue(err().contains("module 'alpha' is not enabled on device disk0"), err());
    }

    @Test
    void noServerIsExitThreeWithTheSocketNamed() throws Exception {
        server.close();
        assertEquals(CtlCommand.NO_ANSWER, ctl("devices"));
        assertTrue(err().startsWith("vhost-blk ctl: cannot talk to the control socket " + path + ": "), err());
        assertEquals("", out());
    }

    @Test
    void badUsageIsExitTwo() {
        assertEquals(2, run(List.of("ctl", "devices")));
        assertEquals("vhost-blk ctl: --control PATH is required (the server's --control socket) (see 'vhost-blk ctl --help')\n", err());
        assertEquals(2, run(List.of("ctl", "--control")));
        assertEquals("vhost-blk ctl: --control needs a value (see 'vhost-blk ctl --help')\n", err());
        assertEquals(2, ctl());
        assertEquals("vhost-blk ctl: no command given (see 'vhost-blk ctl --help')\n", err());
        assertEquals(2, ctl("enable", "disk0", "al pha"));
        assertEquals("vhost-blk ctl: argument 'al pha' is empty or contains white space (see 'vhost-blk ctl --help')\n", err());
        assertEquals(2, ctl("chain", "a\nb"));
        assertEquals(2, run(List.of("ctl", "--verbose", "--control", path.toString(), "devices")));
        assertEquals("vhost-blk ctl: unknown option '--verbose' (see 'vhost-blk ctl --help')\n", err());
        assertEquals(List.of(), device.chain().names());
    }

    @Test
    void helpIsPrintedLocally() {
        assertEquals(0, run(List.of("ctl", "--help")));
        assertTrue(out().contains("Usage: vhost-blk ctl --control PATH COMMAND [ARGS...]"), out());
        assertTrue(out().contains("device-remove DEVICE") && out().contains("Exit status: 0 done, 1"), out());
        assertEquals(0, run(List.of("--help")));
        assertTrue(out().contains("  ctl ") && out().contains("  serve ") && out().contains("  crypt "), out());
        assertEquals(2, run(List.of()));
        assertTrue(out().contains("Usage: vhost-blk"), "no command prints the help: " + out());
    }
}
