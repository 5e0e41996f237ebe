package io.vhostblk.modules.crypt;

import static io.vhostblk.modules.crypt.LuksTestSupport.fast;
import static io.vhostblk.modules.crypt.LuksTestSupport.secret;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class LuksVolumeTest {

    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({"LUKS1, 512", "LUKS2, 512", "LUKS2, 4096"})
    void formatUnlockRoundTrip(LuksVersion version, int sectorSize) throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("correct horse")) {
            LuksVolume.format(img, s, fast(version, sectorSize));
        }
        byte[] plain = LuksTestSupport.randomPlaintext(64 * 1024, 1);
        try (Secret s = secret("correct horse"); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            assertEquals(version, v.version());
            assertEquals(sectorSize, v.sectorSize());
            assertEquals(LuksTestSupport.PAYLOAD, v.payloadSize());
            assertEquals(0, v.keySlot());
            LuksTestSupport.writePayload(v, plain);
        }
        try (Secret s = secret("correct horse"); UnlockedVolume v = LuksVolume.unlock(img, s)) {
            assertArrayEquals(plain, LuksTestSupport.readPayload(v, plain.length));
        }
        String dump = LuksVolume.dump(img);
        assertTrue(dump.contains("0: ENABLED"), dump);
        assertFalse(dump.contains("correct horse"));
    }

    @ParameterizedTest
    @CsvSource({"LUKS1", "LUKS2"})
    void wrongPassphraseIsAClearErrorAndChangesNothing(LuksVersion version) throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("right")) {
            LuksVolume.format(img, s, fast(version, 512));
        }
        byte[] before = LuksTestSupport.sha256(img);
        for (var op : new ThrowingOp[] {
                () -> LuksVolume.unlock(img, secret("wrong-passphrase-xyz")),
                () -> LuksVolume.addKey(img, secret("wrong-passphrase-xyz"), secret("new"), fast(version, 512).kdf()),
                () -> LuksVolume.removeKey(img, secret("wrong-passphrase-xyz")),
                () -> LuksVolume.changeKey(img, secret("wrong-passphrase-xyz"), secret("new"), fast(version, 512).kdf())}) {
            WrongPassphraseException e = assertThrows(WrongPassphraseException.class, op::run);
            assertTrue(e.getMessage().contains(img.toString()), e.getMessage());
            assertFalse(e.getMessage().contains("wrong-passphrase-xyz"));
            assertEquals("key slots", e.field());
        }
        assertArrayEquals(before, LuksTestSupport.sha256(img), "a wrong passphrase must not modify the image");
    }

    interface ThrowingOp {
        void run() throws Exception;
    }

    @ParameterizedTest
    @CsvSource({"LUKS1", "LUKS2"})
    void keySlotLifecycle(LuksVersion version) throws Exception {
        Path img = dir.resolve("disk.img");
        KdfOptions kdf = fast(version, 512).kdf();
        try (Secret s = secret("first")) {
            LuksVolume.format(img, s, fast(version, 512));
        }
        byte[] plain = LuksTestSupport.randomPlaintext(8192, 2);
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("first"))) {
            LuksTestSupport.writePayload(v, plain);
        }
        assertEquals(1, LuksVolume.addKey(img, secret("first"), secret("second"), kdf));
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("second"))) {
            assertEquals(1, v.keySlot());
            assertArrayEquals(plain, LuksTestSupport.readPayload(v, plain.length));
        }
        // Change "first" -> "third": goes to a free slot (2), slot 0 is removed.
        assertEquals(2, LuksVolume.changeKey(img, secret("first"), secret("third"), kdf));
        assertThrows(WrongPassphraseException.class, () -> LuksVolume.unlock(img, secret("first")));
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("third"))) {
            assertArrayEquals(plain, LuksTestSupport.readPayload(v, plain.length));
        }
        assertEquals(1, LuksVolume.removeKey(img, secret("second")));
        assertThrows(WrongPassphraseException.class, () -> LuksVolume.unlock(img, secret("second")));
        LuksException last = assertThrows(LuksException.class, () -> LuksVolume.removeKey(img, secret("third")));
        assertTrue(last.getMessage().contains("last active key slot"), last.getMessage());
        // Slot removal by index, authorised by another passphrase.
        int slot = LuksVolume.addKey(img, secret("third"), secret("fourth"), kdf);
        LuksVolume.removeSlot(img, slot, secret("third"));
        assertThrows(WrongPassphraseException.class, () -> LuksVolume.unlock(img, secret("fourth")));
        assertThrows(LuksException.class, () -> LuksVolume.removeSlot(img, 7, secret("third")));
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("third"))) {
            assertArrayEquals(plain, LuksTestSupport.readPayload(v, plain.length));
        }
    }

    @Test
    void luks1FillsAllEightSlotsThenChangesInPlace() throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("k0")) {
            LuksVolume.format(img, s, fast(LuksVersion.LUKS1, 512));
        }
        for (int i = 1; i < 8; i++) {
            assertEquals(i, LuksVolume.addKey(img, secret("k0"), secret("k" + i), LuksTestSupport.FAST_PBKDF2));
        }
        assertThrows(NoFreeKeySlotException.class, () -> LuksVolume.addKey(img, secret("k0"), secret("k8"), LuksTestSupport.FAST_PBKDF2));
        assertEquals(3, LuksVolume.changeKey(img, secret("k3"), secret("k3-new"), LuksTestSupport.FAST_PBKDF2));
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("k3-new"))) {
            assertEquals(3, v.keySlot());
        }
        assertThrows(WrongPassphraseException.class, () -> LuksVolume.unlock(img, secret("k3")));
    }

    @Test
    void secretsNeverAppearInToStringOrMessages() throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("hunter2-secret")) {
            assertFalse(s.toString().contains("hunter2"));
            LuksVolume.format(img, s, fast(LuksVersion.LUKS2, 4096));
        }
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("hunter2-secret"))) {
            assertFalse(v.toString().contains("hunter2"));
            assertFalse(v.cipher().toString().matches(".*[0-9a-f]{16}.*"), v.cipher().toString());
        }
        Secret closed = secret("gone");
        closed.close();
        assertThrows(IllegalStateException.class, closed::bytes);
    }

    @Test
    void closeWipesTheMasterKey() throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("p")) {
            LuksVolume.format(img, s, fast(LuksVersion.LUKS1, 512));
        }
        UnlockedVolume v = LuksVolume.unlock(img, secret("p"));
        XtsAes256 extra = v.newCipher();
        v.close();
        assertThrows(IllegalStateException.class, v::cipher);
        assertThrows(IllegalStateException.class, () -> extra.encrypt(0, java.lang.foreign.MemorySegment.ofArray(new byte[512]),
                java.lang.foreign.MemorySegment.ofArray(new byte[512]), 512));
    }

    @Test
    void keyFileIsReadWholeIncludingTrailingNewline() throws Exception {
        Path withNewline = LuksTestSupport.passFile(dir, "pass", "secret\n");
        Path img = dir.resolve("disk.img");
        try (Secret s = Secret.fromFile(withNewline)) {
            assertEquals(7, s.length());
            LuksVolume.format(img, s, fast(LuksVersion.LUKS1, 512));
        }
        assertThrows(WrongPassphraseException.class, () -> LuksVolume.unlock(img, secret("secret")));
        LuksVolume.unlock(img, secret("secret\n")).close();
        Path empty = LuksTestSupport.passFile(dir, "empty", "");
        LuksException e = assertThrows(LuksException.class, () -> Secret.fromFile(empty));
        assertTrue(e.getMessage().contains(empty.toString()) && e.getMessage().contains("empty"), e.getMessage());
    }

    @Test
    void corruptHeadersNameTheField() throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("p")) {
            LuksVolume.format(img, s, fast(LuksVersion.LUKS1, 512));
        }
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap("cbc-essiv:sha256\0".getBytes()), 40);
        }
        LuksException e = assertThrows(LuksException.class, () -> LuksVolume.unlock(img, secret("p")));
        assertEquals("cipher-mode", e.field());
        Path notLuks = Files.write(dir.resolve("plain.img"), new byte[8192]);
        assertEquals("magic", assertThrows(LuksException.class, () -> LuksVolume.dump(notLuks)).field());
    }

    @Test
    void luks2SurvivesALostPrimaryHeader() throws Exception {
        Path img = dir.resolve("disk.img");
        try (Secret s = secret("p")) {
            LuksVolume.format(img, s, fast(LuksVersion.LUKS2, 512));
        }
        LuksVolume.addKey(img, secret("p"), secret("q"), LuksTestSupport.FAST_ARGON2);
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 5000); // corrupt the primary's JSON: checksum fails
        }
        try (UnlockedVolume v = LuksVolume.unlock(img, secret("q"))) {
            assertEquals(1, v.keySlot());
        }
    }

    @Test
    void formatOptionsRejectImpossibleCombinations() {
        assertThrows(IllegalArgumentException.class, () -> new FormatOptions(LuksVersion.LUKS1, 4096, 0, LuksTestSupport.FAST_PBKDF2));
        assertThrows(IllegalArgumentException.class, () -> new FormatOptions(LuksVersion.LUKS1, 512, 0, LuksTestSupport.FAST_ARGON2));
        assertThrows(IllegalArgumentException.class, () -> new FormatOptions(LuksVersion.LUKS2, 4096, 1000, LuksTestSupport.FAST_ARGON2));
        assertThrows(IllegalArgumentException.class, () -> KdfOptions.pbkdf2(10));
        assertNotEquals(KdfOptions.defaults(LuksVersion.LUKS1), KdfOptions.defaults(LuksVersion.LUKS2));
    }

    @Test
    void newImageNeedsASize() {
        Path img = dir.resolve("new.img");
        LuksException e = assertThrows(LuksException.class,
                () -> LuksVolume.format(img, secret("p"), new FormatOptions(LuksVersion.LUKS1, 512, 0, LuksTestSupport.FAST_PBKDF2)));
        assertEquals("size", e.field());
    }
}
