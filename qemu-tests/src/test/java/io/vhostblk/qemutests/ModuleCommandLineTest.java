package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.testsupport.ServerJvm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vhost-blk crypt ...} and {@code vhost-blk reduce ...} as an operator runs them: a server process whose
 * class path holds neither module, finding each command in the module's jar, which sees picocli through the
 * server's class loader. Help, a real action, and a usage error with the module's own exit status.
 */
class ModuleCommandLineTest {

    private record Run(int status, String out, String err) {
    }

    private static Run vhostBlk(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(ModuleJars.java(), ServerJvm.OPTIONS, "-cp",
                ModuleJars.serverClassPath(List.of("crypt", "dedup")), VhostBlkServer.MAIN_CLASS));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("vhost-blk " + String.join(" ", args) + " did not finish within 60 s");
        }
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    @Test
    void cryptCommandsComeFromTheModuleJar(@TempDir Path dir) throws Exception {
        String modules = ModuleJars.jar("crypt").getParent().toString();
        Run help = vhostBlk("crypt", "--module-dir", modules, "--help");
        assertEquals(0, help.status(), help.err());
        assertTrue(help.out().contains("Usage: vhost-blk crypt") && help.out().contains("change-key"), help.out());

        Path key = Files.writeString(dir.resolve("key"), "operator passphrase");
        Path image = dir.resolve("disk.img");
        Run format = vhostBlk("crypt", "--module-dir", modules, "format", image.toString(), "--luks1", "--size", "1M",
                "--key-file", key.toString(), "--pbkdf-iterations", "1000");
        assertEquals(0, format.status(), format.err());
        Run dump = vhostBlk("crypt", "--module-dir", modules, "dump", image.toString());
        assertEquals(0, dump.status(), dump.err());
        assertTrue(dump.out().contains("Version:        1"), dump.out());

        Run bad = vhostBlk("crypt", "--module-dir", modules, "format", image.toString(), "--size", "lots");
        assertEquals(1, bad.status(), "crypt's usage status is cryptsetup's 1: " + bad.err());
        assertTrue(bad.err().startsWith("vhost-blk crypt format: --size: 'lots' is not a size"), bad.err());
    }

    @Test
    void reduceCommandsComeFromTheModuleJar(@TempDir Path dir) throws Exception {
        String modules = ModuleJars.jar("dedup").getParent().toString();
        Path image = dir.resolve("vol.img");
        Run format = vhostBlk("reduce", "--module-dir", modules, "format", image.toString(), "--logical-size", "16M");
        assertEquals(0, format.status(), format.err());
        Run check = vhostBlk("reduce", "--module-dir", modules, "check", image.toString());
        assertEquals(0, check.status(), check.out() + check.err());
        assertTrue(check.out().contains("clean"), check.out());
        Run bad = vhostBlk("reduce", "--module-dir", modules, "frobnicate", image.toString());
        assertEquals(2, bad.status(), bad.err());
        assertTrue(bad.err().contains("unknown command 'frobnicate'"), bad.err());
    }
}
