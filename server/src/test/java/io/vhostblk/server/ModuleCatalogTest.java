package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.Sha256;
import io.vhostblk.testsupport.ModuleJarBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModuleCatalogTest {
    @TempDir
    Path dir;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : toClose.reversed()) {
            c.close();
        }
    }

    private BlockDevice device(String id, String vm) throws Exception {
        RamDriver driver = RamDriver.create(1 << 20);
        toClose.add(driver::close);
        return new BlockDevice(id, vm, driver, true);
    }

    private String jar(String pkg, String name) throws Exception {
        Path jar = ModuleJarBuilder.passThrough(pkg, name, "0.9").build(dir.resolve(name + ".jar"));
        return Sha256.of(Files.readAllBytes(jar));
    }

    private ModuleCatalog load(String policy) throws Exception {
        Path file = dir.resolve("vm.policy");
        Files.writeString(file, policy);
        ModuleCatalog c = ModuleCatalog.load(Policy.load(file), dir);
        toClose.add(c);
        return c;
    }

    @Test
    void loadsThePolicysJarsAndBuildsTheInitialChainBySelectorAndEnabled() throws Exception {
        String one = jar("cat.one", "one");
        String two = jar("cat.two", "two");
        String three = jar("cat.three", "three");
        ModuleCatalog c = load("""
                chain = three, one, two
                [module one]
                jar = one.jar
                sha256 = %s
                [module two]
                jar = two.jar
                sha256 = %s
                devices = data*
                [module three]
                jar = three.jar
                sha256 = %s
                enabled = false
                """.formatted(one, two, three));
        assertEquals(List.of("three", "one", "two"), c.available());

        BlockDevice data = device("data0", "web1");
        HookChain chain = c.initialChain(data);
        assertEquals(List.of("one", "two"), chain.names(), "three is available only; order is the policy's");
        assertEquals("0.9", chain.entries().get(0).version());

        BlockDevice root = device("root", "web1");
        assertEquals(List.of("one"), c.initialChain(root).names(), "two's selector excludes root");

        ChainEntry late = c.attach("three", root);
        assertEquals("three", late.name());
        assertEquals(0, c.position("three", c.initialChain(root)), "three comes first in the policy");
        assertNotSame(c.attach("one", root).instance(), c.attach("one", root).instance(), "each attach is a new instance");
    }

    @Test
    void attachRespectsTheSelectorAndNamesTheReason() throws Exception {
        String one = jar("sel.one", "one");
        ModuleCatalog c = load("[module one]\njar = one.jar\nsha256 = " + one + "\nvms = db*\n");
        BlockDevice d = device("disk0", "web1");
        ModuleException e = assertThrows(ModuleException.class, () -> c.attach("one", d));
        assertEquals(dir.resolve("vm.policy") + ":1: module one does not apply to vm=web1 device=disk0: VM web1 matches none of vms = db*",
                e.getMessage());
        assertTrue(c.initialChain(d).names().isEmpty());
    }

    @Test
    void anUnknownModuleIsRefusedListingTheAvailableOnes() throws Exception {
        String one = jar("unk.one", "one");
        ModuleCatalog c = load("[module one]\njar = one.jar\nsha256 = " + one + "\n");
        ModuleException e = assertThrows(ModuleException.class, () -> c.attach("cache", device("d", "v")));
        assertEquals("no module 'cache' in the policy (available: one)", e.getMessage());
    }

    @Test
    void oneBadDigestRefusesTheWholeCatalog() throws Exception {
        String one = jar("bad.one", "one");
        jar("bad.two", "two");
        Path file = dir.resolve("vm.policy");
        Files.writeString(file, "[module one]\njar = one.jar\nsha256 = " + one + "\n[module two]\njar = two.jar\nsha256 = " + "0".repeat(64) + "\n");
        ModuleException e = assertThrows(ModuleException.class, () -> ModuleCatalog.load(Policy.load(file), dir));
        assertTrue(e.getMessage().startsWith(file + ":4: module two: jar " + dir.resolve("two.jar") + ": SHA-256 mismatch"), e.getMessage());
    }

    @Test
    void theRealModulesLoadWithTheirSettings() throws Exception {
        // The pass-through jar stands in for any module; settings reach ModuleSettings with their origin.
        Path jar = new ModuleJarBuilder().source("strict.Module", """
                package strict;
                import io.vhostblk.hooks.*;
                public final class Module implements HookModule {
                    public String name() { return "strict"; }
                    public String version() { return "1"; }
                    public ModuleInstance create(DeviceInfo d, ModuleSettings s) throws ModuleException {
                        s.number("depth", 1, 1, 4);
                        return ctx -> r -> HookAction.PASS;
                    }
                }
                """).service("strict.Module").build(dir.resolve("strict.jar"));
        ModuleCatalog c = load("[module strict]\njar = strict.jar\nsha256 = " + Sha256.of(Files.readAllBytes(jar)) + "\nset.depth = 9\n");
        ModuleException e = assertThrows(ModuleException.class, () -> c.initialChain(device("d", "v")));
        assertEquals(dir.resolve("vm.policy") + ":4: module strict: setting depth: 9 is outside 1..4", e.getMessage());
    }

    @Test
    void positionFollowsThePolicyOrder() throws Exception {
        String a = jar("pos.a", "a");
        String b = jar("pos.b", "b");
        String c3 = jar("pos.c", "c");
        ModuleCatalog c = load(("chain = a, b, c\n[module a]\njar = a.jar\nsha256 = %s\n[module b]\njar = b.jar\nsha256 = %s\nenabled = false\n"
                + "[module c]\njar = c.jar\nsha256 = %s\n").formatted(a, b, c3));
        BlockDevice d = device("d", "v");
        HookChain chain = c.initialChain(d);
        assertEquals(List.of("a", "c"), chain.names());
        assertEquals(1, c.position("b", chain));
        assertEquals(List.of("a", "b", "c"), chain.with(c.attach("b", d), c.position("b", chain)).names());
    }
}
