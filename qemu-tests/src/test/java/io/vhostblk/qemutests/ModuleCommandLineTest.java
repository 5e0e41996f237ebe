package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vhost-blk crypt ...} and {@code vhost-blk reduce ...} as an operator runs them: a server process whose
 * class path holds neither module, finding each command in the module's jar, which sees picocli through the
 * server's class loader. Help, a real action, and a usage error with the module's own exit status.
 */
class ModuleCommandLineTest {

    private static Cli.Output vhostBlk(String... args) throws IOException, InterruptedException {
        return Cli.process(ModuleJars.serverClassPath(List.of("crypt", "dedup")), Duration.ofSeconds(60), List.of(args));
    }

    @Test
    void cryptCommandsComeFromTheModuleJar(@TempDir Path dir) throws Exception {
        String modules = ModuleJars.jar("crypt").getParent().toString();
        Cli.Output help = vhostBlk("crypt", "--module-dir", modules, "--help");
        assertEquals(0, help.status(), help.err());
        assertTrue(help.out().contains("Usage: vhost-blk crypt") && help.out().contains("change-key"), help.out());

        Path key = Files.writeString(dir.resolve("key"), "operator passphrase");
        Path image = dir.resolve("disk.img");
        Cli.Output format = vhostBlk("crypt", "--module-dir", modules, "format", image.toString(), "--luks1", "--size", "1M",
                "--key-file", key.toString(), "--pbkdf-iterations", "1000");
        assertEquals(0, format.status(), format.err());
        Cli.Output dump = vhostBlk("crypt", "--module-dir", modules, "dump", image.toString());
        assertEquals(0, dump.status(), dump.err());
        assertTrue(dump.out().contains("Version:        1"), dump.out());

        Cli.Output bad = vhostBlk("crypt", "--module-dir", modules, "format", image.toString(), "--size", "lots");
        assertEquals(1, bad.status(), "crypt's usage status is cryptsetup's 1: " + bad.err());
        assertTrue(bad.err().startsWith("vhost-blk crypt format: --size: 'lots' is not a size"), bad.err());
    }

    @Test
    void reduceCommandsComeFromTheModuleJar(@TempDir Path dir) throws Exception {
        String modules = ModuleJars.jar("dedup").getParent().toString();
        Path image = dir.resolve("vol.img");
        Cli.Output format = vhostBlk("reduce", "--module-dir", modules, "format", image.toString(), "--logical-size", "16M");
        assertEquals(0, format.status(), format.err());
        Cli.Output check = vhostBlk("reduce", "--module-dir", modules, "check", image.toString());
        assertEquals(0, check.status(), check.out() + check.err());
        assertTrue(check.out().contains("clean"), check.out());
        Cli.Output bad = vhostBlk("reduce", "--module-dir", modules, "frobnicate", image.toString());
        assertEquals(2, bad.status(), bad.err());
        assertTrue(bad.err().contains("unknown command 'frobnicate'"), bad.err());
    }
}
