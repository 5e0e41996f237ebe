package io.vhostblk.modules.crypt;

import static io.vhostblk.modules.crypt.LuksTestSupport.fast;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Our images against the tools everyone audits with, and theirs against us. Needs the Debian packages
 * cryptsetup-bin (cryptsetup) and qemu-utils (qemu-img, qemu-io); a missing tool fails the test naming them.
 * {@code cryptsetup open --test-passphrase} checks a passphrase without device-mapper, so no root or dm needed.
 */
class InteropTest {

    private static final String PASS = "interop passphrase\n"; // the newline is part of it, for every tool

    @TempDir
    Path dir;

    private static String cryptsetup() {
        return Tools.require("cryptsetup", "cryptsetup-bin");
    }

    private static String qemuImg() {
        return Tools.require("qemu-img", "qemu-utils");
    }

    @ParameterizedTest
    @CsvSource({"LUKS1, 512", "LUKS2, 512", "LUKS2, 4096"})
    void cryptsetupAcceptsOurHeaders(LuksVersion version, int sectorSize) throws Exception {
        Path img = dir.resolve("ours.img");
        Path pass = LuksTestSupport.passFile(dir, "pass", PASS);
        try (Secret s = Secret.fromFile(pass)) {
            LuksVolume.format(img, s, fast(version, sectorSize));
        }
        String dump = Tools.runOk(null, cryptsetup(), "luksDump", img.toString()).out();
        assertTrue(dump.contains("Version:       \t" + (version == LuksVersion.LUKS1 ? 1 : 2)), dump);
        assertTrue(dump.contains("xts-plain64"), dump);
        if (version == LuksVersion.LUKS2) {
            assertTrue(dump.contains("sector: " + sectorSize), dump);
            assertTrue(dump.contains("argon2id"), dump);
        }
        Tools.runOk(null, cryptsetup(), "open", "--test-passphrase", "--key-file", pass.toString(), img.toString());
        Path wrong = LuksTestSupport.passFile(dir, "wrong", "not it");
        assertNotEquals(0, Tools.run(null, cryptsetup(), "open", "--test-passphrase", "--key-file", wrong.toString(), img.toString()).exit());
        // Our key-slot changes stay readable to cryptsetup.
        Path second = LuksTestSupport.passFile(dir, "second", "second key");
        try (Secret a = Secret.fromFile(pass); Secret b = Secret.fromFile(second)) {
            LuksVolume.addKey(img, a, b, version == LuksVersion.LUKS1 ? LuksTestSupport.FAST_PBKDF2 : LuksTestSupport.FAST_ARGON2);
        }
        Tools.runOk(null, cryptsetup(), "open", "--test-passphrase", "--key-file", second.toString(), img.toString());
        try (Secret a = Secret.fromFile(pass)) {
            LuksVolume.removeKey(img, a);
        }
        assertNotEquals(0, Tools.run(null, cryptsetup(), "open", "--test-passphrase", "--key-file", pass.toString(), img.toString()).exit());
        Tools.runOk(null, cryptsetup(), "open", "--test-passphrase", "--key-file", second.toString(), img.toString());
    }

    @Test
    void qemuDecryptsOurLuks1Image() throws Exception {
        Path img = dir.resolve("ours.img");
        Path pass = LuksTestSupport.passFile(dir, "pass", PASS);
        byte[] plain = LuksTestSupport.randomPlaintext((int) LuksTestSupport.PAYLOAD, 11);
        try (Secret s = Secret.fromFile(pass)) {
            LuksVolume.format(img, s, fast(LuksVersion.LUKS1, 512));
        }
        try (Secret s = Secret.fromFile(pass); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            LuksTestSupport.writePayload(v, plain);
        }
        Path out = dir.resolve("out.raw");
        Tools.runOk(null, qemuImg(), "convert", "--object", "secret,id=sec0,file=" + pass,
                "--image-opts", "driver=luks,key-secret=sec0,file.filename=" + img, "-O", "raw", out.toString());
        assertArrayEquals(plain, Files.readAllBytes(out));
    }

    /**
     * qemu encrypts, we decrypt. The LUKS1 header comes from cryptsetup with a fixed PBKDF2 iteration
     * count: {@code qemu-img create -f luks} has no such option and times PBKDF2 with the thread's CPU
     * clock, which fails ("Unable to get accurate CPU usage") where that clock reads 0 ms. qemu-img
     * then writes every payload byte, so the ciphertext we read is qemu's.
     */
    @Test
    void weDecryptAQemuLuksImage() throws Exception {
        Path img = dir.resolve("qemu.img");
        Path pass = LuksTestSupport.passFile(dir, "pass", PASS);
        Path raw = Files.write(dir.resolve("plain.raw"), LuksTestSupport.randomPlaintext(4 << 20, 12));
        sparseFile(img, (2 << 20) + (4 << 20));
        Tools.runOk(null, cryptsetup(), "luksFormat", "--batch-mode", "--type", "luks1", "--cipher", "aes-xts-plain64",
                "--key-size", "512", "--hash", "sha256", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                "--align-payload", "4096", "--key-file", pass.toString(), img.toString());
        Tools.runOk(null, qemuImg(), "convert", "-n", "--object", "secret,id=sec0,file=" + pass,
                "-f", "raw", raw.toString(), "--target-image-opts", "driver=luks,key-secret=sec0,file.filename=" + img);
        try (Secret s = Secret.fromFile(pass); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            assertEquals(LuksVersion.LUKS1, v.version());
            assertEquals(4 << 20, v.payloadSize());
            assertArrayEquals(Files.readAllBytes(raw), LuksTestSupport.readPayload(v, 4 << 20));
        }
        // And qemu still opens it after we add a key slot.
        Path second = LuksTestSupport.passFile(dir, "second", "added by vhost-blk");
        try (Secret a = Secret.fromFile(pass); Secret b = Secret.fromFile(second)) {
            LuksVolume.addKey(img, a, b, LuksTestSupport.FAST_PBKDF2);
        }
        Path out = dir.resolve("out.raw");
        Tools.runOk(null, qemuImg(), "convert", "--object", "secret,id=sec0,file=" + second,
                "--image-opts", "driver=luks,key-secret=sec0,file.filename=" + img, "-O", "raw", out.toString());
        assertArrayEquals(Files.readAllBytes(raw), Files.readAllBytes(out));
    }

    @ParameterizedTest
    @CsvSource({"luks1, 512", "luks2, 512", "luks2, 4096"})
    void weUnlockCryptsetupImages(String type, int sectorSize) throws Exception {
        Path img = dir.resolve("cs.img");
        sparseFile(img, 32L << 20);
        Path pass = LuksTestSupport.passFile(dir, "pass", PASS);
        String[] kdf = type.equals("luks1")
                ? new String[] {"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}
                : new String[] {"--pbkdf", "argon2id", "--pbkdf-force-iterations", "4", "--pbkdf-memory", "1024", "--pbkdf-parallel", "1"};
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of(cryptsetup(), "luksFormat", "--batch-mode",
                "--type", type, "--cipher", "aes-xts-plain64", "--key-size", "512", "--hash", "sha256",
                "--sector-size", Integer.toString(sectorSize), "--key-file", pass.toString()));
        cmd.addAll(java.util.List.of(kdf));
        cmd.add(img.toString());
        Tools.runOk(null, cmd.toArray(String[]::new));
        try (Secret s = Secret.fromFile(pass); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            assertEquals(sectorSize, v.sectorSize());
            assertEquals(type.equals("luks1") ? LuksVersion.LUKS1 : LuksVersion.LUKS2, v.version());
        }
        // A slot cryptsetup adds opens with us; a slot we add opens with cryptsetup.
        Path theirs = LuksTestSupport.passFile(dir, "theirs", "added by cryptsetup");
        java.util.List<String> add = new java.util.ArrayList<>(java.util.List.of(cryptsetup(), "luksAddKey", "--batch-mode",
                "--key-file", pass.toString()));
        add.addAll(java.util.List.of(kdf));
        add.addAll(java.util.List.of(img.toString(), theirs.toString()));
        Tools.runOk(null, add.toArray(String[]::new));
        try (Secret s = Secret.fromFile(theirs); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            assertEquals(1, v.keySlot());
        }
        Path ours = LuksTestSupport.passFile(dir, "ours", "added by vhost-blk");
        try (Secret a = Secret.fromFile(theirs); Secret b = Secret.fromFile(ours)) {
            LuksVolume.addKey(img, a, b, type.equals("luks1") ? LuksTestSupport.FAST_PBKDF2 : LuksTestSupport.FAST_ARGON2);
        }
        Tools.runOk(null, cryptsetup(), "open", "--test-passphrase", "--key-file", ours.toString(), img.toString());
        Tools.runOk(null, cryptsetup(), "luksDump", img.toString());
    }

    private static void sparseFile(Path file, long size) throws java.io.IOException {
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(1), size - 1);
        }
    }
}
