package io.vhostblk.modules.crypt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CryptCommandTest {

    @TempDir
    Path dir;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        out.reset();
        err.reset();
        return new CryptCommand(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8))
                .run(List.of(args));
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void fullLifecycleThroughTheCli() throws Exception {
        Path img = dir.resolve("vm.img");
        Path k1 = LuksTestSupport.passFile(dir, "k1", "first-secret");
        Path k2 = LuksTestSupport.passFile(dir, "k2", "second-secret");
        Path k3 = LuksTestSupport.passFile(dir, "k3", "third-secret");
        assertEquals(0, run("format", img.toString(), "--luks1", "--key-file", k1.toString(), "--size", "1M", "--pbkdf-iterations", "1000"), err());
        assertEquals((2L << 20) + (1L << 20), Files.size(img));
        assertEquals(0, run("add-key", img.toString(), "--key-file=" + k1, "--new-key-file", k2.toString(), "--pbkdf-iterations", "1000"), err());
        assertTrue(out().contains("key slot 1"), out());
        assertEquals(0, run("change-key", img.toString(), "--key-file", k2.toString(), "--new-key-file", k3.toString(), "--pbkdf-iterations", "1000"), err());
        assertEquals(0, run("remove-key", img.toString(), "--key-file", k1.toString()), err());
        assertEquals(0, run("dump", img.toString()), err());
        String dump = out();
        assertTrue(dump.contains("Version:        1") && dump.contains("2: ENABLED") && dump.contains("0: DISABLED"), dump);
        for (String s : List.of("first-secret", "second-secret", "third-secret")) {
            assertFalse(dump.contains(s));
        }
        try (Secret s = Secret.fromFile(k3); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            assertEquals(2, v.keySlot());
        }
    }

    @Test
    void luks2With4096ByteSectors() throws Exception {
        Path img = dir.resolve("vm2.img");
        Path k = LuksTestSupport.passFile(dir, "k", "pw");
        assertEquals(0, run("format", img.toString(), "--luks2", "--sector-size", "4096", "--size", "8M", "--key-file", k.toString(),
                "--pbkdf", "argon2id", "--pbkdf-iterations", "4", "--pbkdf-memory", "1024", "--pbkdf-parallel", "1"), err());
        assertEquals(0, run("dump", img.toString()));
        assertTrue(out().contains("Sector size:    4096") && out().contains("argon2id time=4 memory=1024KiB cpus=1"), out());
        Path k2 = LuksTestSupport.passFile(dir, "k2", "pw2");
        assertEquals(0, run("add-key", img.toString(), "--key-file", k.toString(), "--new-key-file", k2.toString(),
                "--pbkdf", "pbkdf2", "--pbkdf-iterations", "1000"), err());
        assertEquals(0, run("remove-key", img.toString(), "--key-file", k2.toString(), "--key-slot", "0"), err());
        assertEquals(0, run("dump", img.toString()));
        assertTrue(out().contains("1: ENABLED  pbkdf2") && !out().contains("0: ENABLED"), out());
    }

    @Test
    void errorsNameTheFileAndField() throws Exception {
        Path img = dir.resolve("vm.img");
        Path k = LuksTestSupport.passFile(dir, "k", "right");
        Path wrong = LuksTestSupport.passFile(dir, "wrong", "not-the-passphrase");
        assertEquals(0, run("format", img.toString(), "--luks1", "--key-file", k.toString(), "--size", "1M", "--pbkdf-iterations", "1000"));
        byte[] before = LuksTestSupport.sha256(img);

        assertEquals(CryptCommand.WRONG_PASSPHRASE, run("add-key", img.toString(), "--key-file", wrong.toString(), "--new-key-file", k.toString()));
        assertTrue(err().contains(img.toString()) && err().contains("key slots"), err());
        assertFalse(err().contains("not-the-passphrase"));
        assertEquals(java.util.Arrays.toString(before), java.util.Arrays.toString(LuksTestSupport.sha256(img)));

        Path missing = dir.resolve("missing");
        assertEquals(CryptCommand.BAD_IMAGE, run("remove-key", img.toString(), "--key-file", missing.toString()));
        assertTrue(err().contains(missing.toString()) && err().contains("key file does not exist"), err());

        Path notLuks = Files.write(dir.resolve("raw.img"), new byte[4096]);
        assertEquals(CryptCommand.BAD_IMAGE, run("dump", notLuks.toString()));
        assertTrue(err().contains(notLuks.toString()) && err().contains("magic"), err());

        assertEquals(CryptCommand.USAGE, run("format", img.toString(), "--luks1", "--sector-size", "4096", "--key-file", k.toString()));
        assertTrue(err().contains("512"), err());
        assertEquals(CryptCommand.USAGE, run("format", img.toString(), "--passphrase", "hunter2"));
        assertTrue(err().contains("only from files") && !err().contains("hunter2"), err());
        assertEquals(CryptCommand.USAGE, run("format", img.toString(), "hunter2"));
        assertFalse(err().contains("hunter2"), err());
        assertEquals(CryptCommand.USAGE, run("frobnicate", img.toString()));
        assertEquals(CryptCommand.USAGE, run());
        assertEquals(CryptCommand.BAD_IMAGE, run("format", dir.resolve("new.img").toString(), "--key-file", k.toString()));
        assertTrue(err().contains("size"), err());
    }
}
