package io.vhostblk.hooks;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.testsupport.ModuleJarBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModuleLoaderTest {
    @TempDir
    Path dir;
    private ModuleLoader loader;

    @AfterEach
    void close() {
        if (loader != null) {
            loader.close();
        }
    }

    private static String digest(Path jar) throws Exception {
        return Sha256.of(Files.readAllBytes(jar));
    }

    @Test
    void loadsAModuleJarFromTheDirectoryInItsOwnClassLoader() throws Exception {
        Path jar = ModuleJarBuilder.passThrough("testmod.one", "one", "1.2.3").build(dir.resolve("one.jar"));
        loader = new ModuleLoader(dir);
        LoadedModule m = loader.load("one", "one.jar", digest(jar), "test.policy:3");
        assertEquals("one", m.name());
        assertEquals("1.2.3", m.version());
        assertEquals(digest(jar), m.sha256());
        assertEquals(dir.resolve("one.jar"), m.jar());
        assertNotSame(ModuleLoaderTest.class.getClassLoader(), m.classLoader());
        assertSame(HookModule.class.getClassLoader(), m.classLoader().getParent());
        assertThrows(ClassNotFoundException.class, () -> ModuleLoaderTest.class.getClassLoader().loadClass("testmod.one.Module"),
                "the module's classes are not on the server's class path");
        BlockHook hook = m.module().create(new DeviceInfo("d", "vm", "ram", 1 << 20, false, "ram:1M"), ModuleSettings.empty("one"))
                .openQueue(new NoContext());
        assertEquals(HookAction.PASS, hook.beforeDriver(new BlockRequest(0, "d", 0).set(BlockOp.READ, 0, 512, IoVector.NONE, false)));
    }

    @Test
    void aJarWithAnotherDigestIsRefusedAndNothingOfItIsLoaded() throws Exception {
        Path jar = ModuleJarBuilder.passThrough("testmod.evil", "evil", "1").build(dir.resolve("evil.jar"));
        String wrong = "ab".repeat(32);
        loader = new ModuleLoader(dir);
        ModuleException e = assertThrows(ModuleException.class, () -> loader.load("evil", "evil.jar", wrong, "web1.policy:9"));
        assertEquals("web1.policy:9: module evil: jar " + jar + ": SHA-256 mismatch: the policy expects " + wrong
                + ", the jar has " + digest(jar) + "; refused, nothing from it was loaded", e.getMessage());
        assertNull(System.getProperty("vhostblk.test.loaded.evil"), "no class of a refused jar may run");
    }

    @Test
    void theDigestMayBeWrittenInUpperCase() throws Exception {
        Path jar = ModuleJarBuilder.passThrough("testmod.upper", "upper", "1").build(dir.resolve("upper.jar"));
        loader = new ModuleLoader(dir);
        assertEquals("upper", loader.load("upper", "upper.jar", digest(jar).toUpperCase(), "p:1").name());
    }

    @Test
    void oneJarServingTwoDeclarationsSharesItsClassLoader() throws Exception {
        // The reduce jar serves dedup and compress: one loader, so one engine (static state) serves both.
        Path jar = ModuleJarBuilder.passThrough("testmod.twice", "twice", "1").build(dir.resolve("twice.jar"));
        Files.copy(jar, dir.resolve("copy.jar"));
        loader = new ModuleLoader(dir);
        LoadedModule first = loader.load("twice", "twice.jar", digest(jar), "p:1");
        LoadedModule second = loader.load("twice", "copy.jar", digest(jar), "p:5");
        assertSame(first.classLoader(), second.classLoader());
        assertEquals(dir.resolve("copy.jar"), second.jar());
    }

    @Test
    void twoModulesGetSeparateClassLoadersAndDoNotSeeEachOther() throws Exception {
        // Both jars hold a class common.Marker with different contents: each module must see its own.
        Path a = moduleWithMarker("a").build(dir.resolve("a.jar"));
        Path b = moduleWithMarker("b").build(dir.resolve("b.jar"));
        loader = new ModuleLoader(dir);
        LoadedModule ma = loader.load("mod-a", "a.jar", digest(a), "p:1");
        LoadedModule mb = loader.load("mod-b", "b.jar", digest(b), "p:2");
        assertNotSame(ma.classLoader(), mb.classLoader());
        assertEquals("marker-a", ma.version());
        assertEquals("marker-b", mb.version());
        assertThrows(ClassNotFoundException.class, () -> ma.classLoader().loadClass("mod.b.Module"));
        assertThrows(ClassNotFoundException.class, () -> mb.classLoader().loadClass("mod.a.Module"));
        assertSame(HookModule.class, ma.classLoader().loadClass(HookModule.class.getName()), "the SPI is shared");
    }

    private static ModuleJarBuilder moduleWithMarker(String x) {
        return new ModuleJarBuilder()
                .source("common.Marker", "package common; public final class Marker { public static final String ID = \"marker-" + x + "\"; }")
                .source("mod." + x + ".Module", """
                        package mod.%s;
                        import io.vhostblk.hooks.*;
                        public final class Module implements HookModule {
                            public String name() { return "mod-%s"; }
                            public String version() { return common.Marker.ID; }
                            public ModuleInstance create(DeviceInfo d, ModuleSettings s) { return ctx -> r -> HookAction.PASS; }
                        }
                        """.formatted(x, x))
                .service("mod." + x + ".Module");
    }

    @Test
    void aJarWithoutAHookModuleIsRefused() throws Exception {
        Path jar = new ModuleJarBuilder().source("plain.Thing", "package plain; public class Thing {}").build(dir.resolve("plain.jar"));
        loader = new ModuleLoader(dir);
        ModuleException e = assertThrows(ModuleException.class, () -> loader.load("plain", "plain.jar", digest(jar), "p:4"));
        assertTrue(e.getMessage().startsWith("p:4: module plain: jar " + jar + ": provides no io.vhostblk.hooks.HookModule"), e.getMessage());
    }

    @Test
    void aModuleWhoseNameDiffersFromThePolicysIsRefused() throws Exception {
        Path jar = ModuleJarBuilder.passThrough("testmod.other", "other", "1").build(dir.resolve("other.jar"));
        loader = new ModuleLoader(dir);
        ModuleException e = assertThrows(ModuleException.class, () -> loader.load("cache", "other.jar", digest(jar), "p:5"));
        assertEquals("p:5: module cache: jar " + jar + ": provides module(s) other, not cache", e.getMessage());
    }

    @Test
    void aServiceNamingAMissingClassIsRefused() throws Exception {
        Path jar = new ModuleJarBuilder().source("x.Y", "package x; public class Y {}").service("x.Missing").build(dir.resolve("broken.jar"));
        loader = new ModuleLoader(dir);
        ModuleException e = assertThrows(ModuleException.class, () -> loader.load("broken", "broken.jar", digest(jar), "p:6"));
        assertTrue(e.getMessage().startsWith("p:6: module broken: jar " + jar + ": its HookModule cannot be loaded"), e.getMessage());
    }

    @Test
    void aMissingJarIsReportedWithItsPath() {
        loader = new ModuleLoader(dir);
        ModuleException e = assertThrows(ModuleException.class, () -> loader.load("gone", "gone.jar", "00".repeat(32), "p:7"));
        assertTrue(e.getMessage().startsWith("p:7: module gone: jar " + dir.resolve("gone.jar") + ": cannot read it"), e.getMessage());
    }

    @Test
    void theJarIsLoadedFromTheBytesThatWereChecked() throws Exception {
        Path jar = ModuleJarBuilder.passThrough("testmod.swap", "swap", "1").build(dir.resolve("swap.jar"));
        String good = digest(jar);
        loader = new ModuleLoader(dir);
        LoadedModule m = loader.load("swap", "swap.jar", good, "p:1");
        // Replacing the file afterwards changes nothing for the loaded module (it runs from a private copy).
        ModuleJarBuilder.passThrough("testmod.swap2", "swap", "2").build(jar);
        assertNotEquals(good, digest(jar));
        assertEquals("1", m.version());
        assertTrue(m.classLoader().loadClass("testmod.swap.Module") != null);
    }

    /** A context no test hook calls. */
    private static final class NoContext implements HookContext {
        @Override
        public DeviceInfo device() {
            return new DeviceInfo("d", "vm", "ram", 1 << 20, false, "ram:1M");
        }

        @Override
        public int queueIndex() {
            return 0;
        }

        @Override
        public void complete(BlockRequest request, long result) {
            throw new AssertionError("not expected");
        }

        @Override
        public void execute(Runnable task) {
            throw new AssertionError("not expected");
        }

        @Override
        public BlockRequest child(BlockRequest parent) {
            throw new AssertionError("not expected");
        }

        @Override
        public BlockRequest newRequest() {
            throw new AssertionError("not expected");
        }

        @Override
        public void submitBelow(BlockRequest request, DriverCompletion done) {
            throw new AssertionError("not expected");
        }
    }
}
