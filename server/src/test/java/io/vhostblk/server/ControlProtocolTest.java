package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The control commands against a real device (RAM driver) whose requests run through the compat-lib. */
class ControlProtocolTest {
    private static final long DISK = 1 << 20;

    private RamDriver driver;
    private BlockDevice device;
    private DeviceRegistry registry;
    private TestModules modules;
    private ControlProtocol protocol;
    private GuestQueue guest;

    @BeforeEach
    void setUp() throws Exception {
        driver = RamDriver.create(DISK);
        device = new BlockDevice("disk0", "vm1", driver, true);
        registry = new DeviceRegistry();
        registry.register(device);
        modules = new TestModules();
        protocol = new ControlProtocol(registry, modules);
        guest = new GuestQueue(device);
    }

    @AfterEach
    void tearDown() {
        guest.close();
        driver.close();
    }

    private Map<?, ?> ok(String line) throws Exception {
        String reply = protocol.handle(line);
        assertFalse(reply.contains("\n"), "a reply is one line: " + reply);
        Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
        assertEquals(true, m.get("ok"), "'" + line + "' must succeed: " + reply);
        return m;
    }

    private String error(String line) throws Exception {
        String reply = protocol.handle(line);
        assertFalse(reply.contains("\n"), "a reply is one line: " + reply);
        Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
        assertEquals(false, m.get("ok"), "'" + line + "' must fail: " + reply);
        assertEquals(List.of("ok", "error"), List.copyOf(m.keySet()));
        return (String) m.get("error");
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    @Test
    void devicesListsVmDriverCapacityAndChain() throws Exception {
        ok("enable disk0 alpha");
        Map<?, ?> r = ok("devices");
        List<?> devices = (List<?>) r.get("devices");
        assertEquals(1, devices.size());
        Map<?, ?> d = (Map<?, ?>) devices.getFirst();
        assertEquals("disk0", d.get("id"));
        assertEquals("vm1", d.get("vm"));
        assertEquals("ram", d.get("driver"));
        assertEquals(DISK, d.get("capacity"));
        assertEquals(false, d.get("readOnly"));
        assertEquals(List.of("alpha"), d.get("chain"));
    }

    @Test
    void enableDisableAndMoveChangeTheChainAndTheOrderRequestsTakeThroughIt() throws Exception {
        assertEquals(List.of("alpha"), ok("enable disk0 alpha").get("chain"));
        assertEquals(List.of("alpha", "beta"), ok("enable disk0 beta").get("chain"));
        assertEquals(List.of("gamma", "alpha", "beta"), ok("enable disk0 gamma 0").get("chain"));
        assertEquals(List.of("gamma", "alpha", "beta"), device.chain().names());
        guest.write(8, pattern(4096, 1));
        assertEquals(List.of("gamma", "alpha", "beta"), modules.calls);

        modules.calls.clear();
        assertEquals(List.of("beta", "gamma", "alpha"), ok("move disk0 beta 0").get("chain"));
        assertEquals(List.of("gamma", "alpha", "beta"), ok("move disk0 beta 2").get("chain"));
        assertEquals(List.of("alpha", "gamma", "beta"), ok("move disk0 alpha 0").get("chain"));
        guest.write(8, pattern(4096, 2));
        assertEquals(List.of("alpha", "gamma", "beta"), modules.calls);

        modules.calls.clear();
        assertEquals(List.of("alpha", "beta"), ok("disable disk0 gamma").get("chain"));
        assertEquals(List.of("alpha", "beta"), device.chain().names());
        assertArrayEquals(pattern(4096, 2), guest.read(8, 4096), "data written through the chain reads back");
        assertEquals(List.of("alpha", "beta"), modules.calls);

        Map<?, ?> chain = ok("chain disk0");
        assertEquals("disk0", chain.get("device"));
        assertEquals(List.of(Map.of("position", 0L, "name", "alpha", "version", "1.0-test"),
                Map.of("position", 1L, "name", "beta", "version", "1.0-test")), chain.get("chain"));

        ok("disable disk0 alpha");
        ok("disable disk0 beta");
        assertEquals(List.of(), ok("chain disk0").get("chain"));
        assertEquals(null, device.hooks(), "an empty chain is the no-module fast path");
        modules.calls.clear();
        guest.write(0, pattern(512, 3));
        assertEquals(List.of(), modules.calls);
    }

    @Test
    void countersReflectTheRequestsEachModuleSaw() throws Exception {
        ok("enable disk0 alpha");
        ok("enable disk0 flush-eater");
        assertEquals(VirtioBlk.S_OK, guest.write(0, pattern(4096, 5)));
        assertEquals(VirtioBlk.S_OK, guest.write(8, pattern(4096, 6)));
        byte[] back = guest.read(0, 8192);
        assertEquals(VirtioBlk.S_OK, guest.flush());

        byte[] expected = new byte[8192];
        System.arraycopy(pattern(4096, 5), 0, expected, 0, 4096);
        System.arraycopy(pattern(4096, 6), 0, expected, 4096, 4096);
        assertArrayEquals(expected, back);

        Map<?, ?> alpha = ok("counters disk0 alpha");
        assertEquals("alpha", alpha.get("module"));
        assertEquals(Map.of("seen", 4L, "completed", 0L, "passed", 4L, "errors", 0L, "bytes", 16384L),
                alpha.get("counters"));
        Map<?, ?> all = (Map<?, ?>) ok("counters disk0").get("modules");
        assertEquals(List.of("alpha", "flush-eater"), List.copyOf(all.keySet()));
        assertEquals(Map.of("seen", 4L, "completed", 1L, "passed", 3L, "errors", 0L, "bytes", 16384L),
                all.get("flush-eater"), "flush-eater answered the FLUSH itself");
        assertEquals(all.get("alpha"), alpha.get("counters"));
    }

    @Test
    void reportIsTheModulesOwnMapAsJson() throws Exception {
        ok("enable disk0 alpha");
        guest.write(0, pattern(512, 1));
        guest.write(0, pattern(512, 2));
        Map<?, ?> r = ok("report disk0 alpha");
        assertEquals("alpha", r.get("module"));
        assertEquals("1.0-test", r.get("version"));
        Map<?, ?> report = (Map<?, ?>) r.get("report");
        assertEquals(2L, report.get("requests"));
        assertEquals("say \"hi\"\\\n\ttab\u0001", report.get("label"), "strings survive escaping");
        assertEquals(Map.of("ratio", 0.5), report.get("nested"));
        assertEquals(List.of(1L, 2L), report.get("list"));
    }

    @Test
    void modulesListsThePolicysModulesAndHelpListsEveryCommand() throws Exception {
        assertEquals(modules.available(), ok("modules").get("modules"));
        List<?> help = (List<?>) ok("help").get("commands");
        for (String c : List.of("devices", "chain", "modules", "enable", "disable", "move", "counters", "report", "help")) {
            assertTrue(help.stream().anyMatch(h -> ((String) h).startsWith(c + " ")), c + " missing from help: " + help);
        }
    }

    @Test
    void badCommandsGetPreciseErrorsAndLeaveTheChainAlone() throws Exception {
        ok("enable disk0 alpha");
        assertEquals("no device 'nope' (devices: disk0)", error("chain nope"));
        assertEquals("no device 'nope' (devices: disk0)", error("enable nope alpha"));
        assertTrue(error("enable disk0 delta").startsWith("no module 'delta' in the policy (available: alpha, beta, "));
        assertEquals("module alpha is already enabled on device disk0 at position 0 (use move to reorder)",
                error("enable disk0 alpha"));
        assertEquals("enable: position 2 is outside 0..1 (0 is nearest the guest)", error("enable disk0 beta 2"));
        assertEquals("enable: position -1 is outside 0..1 (0 is nearest the guest)", error("enable disk0 beta -1"));
        assertEquals("position 'first' is not a whole number", error("enable disk0 beta first"));
        assertEquals("move: position 1 is outside 0..0 (0 is nearest the guest)", error("move disk0 alpha 1"));
        assertEquals("module 'beta' is not enabled on device disk0 (chain [alpha])", error("move disk0 beta 0"));
        assertEquals("module 'beta' is not enabled on device disk0 (chain [alpha])", error("disable disk0 beta"));
        assertEquals("module 'beta' is not enabled on device disk0 (chain [alpha])", error("counters disk0 beta"));
        assertEquals("module 'beta' is not enabled on device disk0 (chain [alpha])", error("report disk0 beta"));
        assertEquals("enable takes 2 to 3 argument(s), got 1 (usage: enable DEVICE MODULE [POSITION])",
                error("enable disk0"));
        assertEquals("move takes 3 argument(s), got 4 (usage: move DEVICE MODULE POSITION)",
                error("move disk0 alpha 0 1"));
        assertEquals("devices takes 0 argument(s), got 1 (usage: devices)", error("devices disk0"));
        assertEquals("unknown command 'frobnicate' (send 'help' for the list)", error("frobnicate disk0"));
        assertEquals("unknown command 'DEVICES' (send 'help' for the list)", error("DEVICES"));
        assertEquals("empty command (send 'help' for the list)", error("   \t "));
        String longName = "x".repeat(500);
        String e = error("chain " + longName);
        assertTrue(e.length() < 200, "user input is echoed shortened: " + e);
        assertEquals(List.of("alpha"), device.chain().names());
        assertEquals(1, modules.instances.size(), "no refused command created an instance");
    }

    @Test
    void aModuleThatCannotAttachOrReportIsAnErrorNotACrash() throws Exception {
        assertEquals("cannot enable module refuses on device disk0: module refuses: device disk0 is not for me",
                error("enable disk0 refuses"));
        ok("enable disk0 bad-report");
        assertEquals("module bad-report could not report: java.lang.IllegalStateException: statistics unavailable",
                error("report disk0 bad-report"));
        assertEquals(List.of("bad-report"), device.chain().names(), "a failed report leaves the module in place");
    }

    @Test
    void aModuleThatWouldResizeARunningGuestsDiskIsRefusedAndClosed() throws Exception {
        device.geometryFixed();
        String e = error("enable disk0 shrinker");
        assertTrue(e.contains("would change the device size"), e);
        assertEquals(List.of(), device.chain().names());
        assertEquals(1, modules.instances.size());
        assertTrue(modules.instances.getFirst().closed, "the instance that never joined the chain is closed");
    }

    @Test
    void resizeGrowsAnImageReportsTheNewCapacityAndRefusesWhatItMustNot(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Path img = dir.resolve("grow.img");
        try (io.vhostblk.drivers.FileDriver file = io.vhostblk.drivers.FileDriver.open(img, DISK, false)) {
            registry.register(new BlockDevice("disk1", "vm1", file, true));
            Map<?, ?> r = ok("resize disk1 4M");
            assertEquals("disk1", r.get("device"));
            assertEquals(DISK, ((Number) r.get("capacityBefore")).longValue());
            assertEquals(4L << 20, ((Number) r.get("capacity")).longValue());
            assertEquals("no vhost-user device attached", r.get("guest"));
            assertEquals(4L << 20, java.nio.file.Files.size(img));
            Map<?, ?> listed = (Map<?, ?>) ((List<?>) ok("devices").get("devices")).get(1);
            assertEquals(4L << 20, ((Number) listed.get("capacity")).longValue(), "devices reports the new size");
            // No guest on disk1: shrinking is allowed.
            assertEquals(2L << 20, ((Number) ok("resize disk1 2M").get("capacity")).longValue());
        }
        // disk0 has a running queue (the test guest): shrinking is refused, and RAM cannot change size at all.
        assertEquals("vm=vm1 device=disk0: shrinking from 1048576 to 524288 bytes is refused while a guest uses the"
                + " device (1 queues running): the end of its disk would vanish under it", error("resize disk0 512K"));
        assertEquals("vm=vm1 device=disk0: ram driver (ram:1048576) cannot change its size", error("resize disk0 2M"));
        assertEquals("resize: 'lots' is not a size (examples: 1048576, 512M, 8G)", error("resize disk0 lots"));
        assertEquals("resize takes 2 argument(s), got 1 (usage: resize DEVICE SIZE)", error("resize disk0"));
        assertEquals(DISK, device.capacitySectors() << 9);
    }

    @Test
    void disableLetsTheModulePrepareWhileItIsStillInTheChain() throws Exception {
        ok("enable disk0 alpha");
        TestModules.Instance alpha = modules.instances.getFirst();
        List<List<String>> chainWhilePreparing = new java.util.ArrayList<>();
        alpha.onPrepareDetach = () -> {
            chainWhilePreparing.add(device.chain().names());
            try {
                guest.write(0, pattern(4096, 3)); // the guest keeps running through the module meanwhile
            } catch (Exception e) {
                return java.util.concurrent.CompletableFuture.failedFuture(e);
            }
            return java.util.concurrent.CompletableFuture.completedFuture(null);
        };
        long before = alpha.requests;
        assertEquals(List.of(), ok("disable disk0 alpha").get("chain"));
        assertEquals(List.of(List.of("alpha")), chainWhilePreparing, "prepared before the swap, once");
        assertEquals(before + 1, alpha.requests, "the write during the preparation went through the module");
    }

    @Test
    void aModuleThatCannotPrepareItsDetachStaysEnabled() throws Exception {
        ok("enable disk0 alpha");
        TestModules.Instance alpha = modules.instances.getFirst();
        alpha.onPrepareDetach = () -> java.util.concurrent.CompletableFuture.failedFuture(
                new IllegalStateException("writing back before detach failed: errno 5"));
        assertEquals("cannot disable module alpha on device disk0: writing back before detach failed: errno 5; "
                + "it stays enabled", error("disable disk0 alpha"));
        assertEquals(List.of("alpha"), device.chain().names());
        assertEquals(0, registry.retiredCount(device));
        alpha.onPrepareDetach = null;
        assertEquals(List.of(), ok("disable disk0 alpha").get("chain"), "once it can, the disable goes through");
    }

    @Test
    void disabledInstancesStayOpenUntilTheDeviceStopsAndReEnablingMakesAFreshOne() throws Exception {
        ok("enable disk0 alpha");
        guest.write(0, pattern(4096, 1));
        ok("disable disk0 alpha");
        TestModules.Instance first = modules.instances.getFirst();
        assertFalse(first.closed, "requests that started on the old chain may still be in it");
        assertEquals(1, registry.retiredCount(device));

        ok("enable disk0 alpha");
        assertEquals(2, modules.instances.size());
        guest.write(0, pattern(4096, 2));
        assertEquals(Map.of("seen", 1L, "completed", 0L, "passed", 1L, "errors", 0L, "bytes", 4096L),
                ok("counters disk0 alpha").get("counters"), "the new instance counts from zero");

        registry.stopped(device);
        assertTrue(first.closed);
        assertFalse(modules.instances.get(1).closed, "the instance still in the chain is not the registry's to close");
        assertEquals(List.of(), ok("devices").get("devices"), "a stopped device is no longer listed");
        assertEquals("no device 'disk0' (devices: none)", error("chain disk0"));
    }

    @Test
    void withoutAPolicyNothingCanBeEnabled() throws Exception {
        protocol = new ControlProtocol(registry, ModuleSource.NONE);
        assertEquals(List.of(), ok("modules").get("modules"));
        assertEquals("no module 'alpha' in the policy (available: none)", error("enable disk0 alpha"));
    }
}
