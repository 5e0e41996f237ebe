package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Random;

/** Cheap KDF settings and plaintext helpers shared by the LUKS tests. */
final class LuksTestSupport {

    /** Keep tests fast: the minimum PBKDF2 count, and Argon2id at its minimum time with 1 MiB. */
    static final KdfOptions FAST_PBKDF2 = KdfOptions.pbkdf2(1000);
    static final KdfOptions FAST_ARGON2 = KdfOptions.argon2id(4, 1024, 1);
    static final long PAYLOAD = 1L << 20;

    private LuksTestSupport() {
    }

    static FormatOptions fast(LuksVersion version, int sectorSize) {
        return new FormatOptions(version, sectorSize, PAYLOAD, version == LuksVersion.LUKS1 ? FAST_PBKDF2 : FAST_ARGON2);
    }

    static Secret secret(String passphrase) {
        return Secret.wrap(passphrase.getBytes(StandardCharsets.UTF_8));
    }

    static Path passFile(Path dir, String name, String content) throws IOException {
        return Files.write(dir.resolve(name), content.getBytes(StandardCharsets.UTF_8));
    }

    static byte[] randomPlaintext(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Encrypts {@code plain} as guest sectors from 0 and writes it to the image's payload. */
    static void writePayload(UnlockedVolume v, byte[] plain) throws IOException {
        byte[] cipherText = new byte[plain.length];
        v.cipher().encrypt(0, MemorySegment.ofArray(plain), MemorySegment.ofArray(cipherText), v.sectorSize());
        try (FileChannel ch = FileChannel.open(v.image(), StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(cipherText);
            long pos = v.payloadOffset();
            while (b.hasRemaining()) {
                pos += ch.write(b, pos);
            }
            ch.force(true);
        }
    }

    /** Reads {@code length} payload bytes from guest sector 0 and decrypts them in place. */
    static byte[] readPayload(UnlockedVolume v, int length) throws IOException {
        byte[] data = new byte[length];
        try (FileChannel ch = FileChannel.open(v.image(), StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.wrap(data);
            long pos = v.payloadOffset();
            while (b.hasRemaining()) {
                int n = ch.read(b, pos);
                if (n < 0) {
                    throw new IOException("short payload");
                }
                pos += n;
            }
        }
        MemorySegment seg = MemorySegment.ofArray(data);
        v.cipher().decrypt(0, seg, seg, v.sectorSize());
        return data;
    }

    static byte[] sha256(Path file) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file));
    }
}
