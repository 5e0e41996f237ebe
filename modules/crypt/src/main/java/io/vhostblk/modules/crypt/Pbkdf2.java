package io.vhostblk.modules.crypt;

import java.security.InvalidKeyException;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * PBKDF2 (RFC 8018) over the JDK's HMAC, on raw bytes. The JDK's own PBKDF2 SecretKeyFactory takes the
 * password as char[] and re-encodes it, which cannot represent a binary key file; LUKS hashes the bytes as is.
 */
final class Pbkdf2 {

    private Pbkdf2() {
    }

    /** Derives {@code length} bytes; the caller wipes the result. */
    static byte[] derive(HashSpec hash, byte[] password, byte[] salt, int iterations, int length) {
        if (iterations < 1) {
            throw new IllegalArgumentException("PBKDF2 iterations must be positive, got " + iterations);
        }
        Mac mac = hash.newMac();
        try {
            mac.init(new SecretKeySpec(password, hash.macAlgorithm));
        } catch (InvalidKeyException e) {
            throw new IllegalStateException("HMAC refused the passphrase as key", e);
        }
        int h = hash.length;
        byte[] out = new byte[length];
        byte[] u = new byte[h];
        byte[] t = new byte[h];
        byte[] index = new byte[4];
        try {
            for (int block = 1, off = 0; off < length; block++, off += h) {
                index[0] = (byte) (block >>> 24);
                index[1] = (byte) (block >>> 16);
                index[2] = (byte) (block >>> 8);
                index[3] = (byte) block;
                mac.update(salt);
                mac.update(index);
                mac.doFinal(u, 0);
                System.arraycopy(u, 0, t, 0, h);
                for (int i = 1; i < iterations; i++) {
                    mac.update(u);
                    mac.doFinal(u, 0);
                    for (int k = 0; k < h; k++) {
                        t[k] ^= u[k];
                    }
                }
                System.arraycopy(t, 0, out, off, Math.min(h, length - off));
            }
            return out;
        } catch (javax.crypto.ShortBufferException e) {
            throw new IllegalStateException("HMAC output buffer too small", e);
        } finally {
            Arrays.fill(u, (byte) 0);
            Arrays.fill(t, (byte) 0);
        }
    }

    /** Iterations that take about {@code millis} on this machine, at least {@code minimum} (cryptsetup's --iter-time). */
    static int iterationsFor(HashSpec hash, int keyLength, long millis, int minimum) {
        byte[] pass = "vhost-blk-benchmark".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] salt = new byte[32];
        int probe = 20_000;
        long elapsed;
        while (true) {
            long start = System.nanoTime();
            Arrays.fill(derive(hash, pass, salt, probe, keyLength), (byte) 0);
            elapsed = System.nanoTime() - start;
            // Measure at least ~50 ms so timer resolution and warm-up do not dominate.
            if (elapsed >= 50_000_000L || probe >= 1 << 28) {
                break;
            }
            probe *= 4;
        }
        double perMilli = probe / (elapsed / 1e6);
        long iterations = (long) (perMilli * millis);
        return (int) Math.max(minimum, Math.min(Integer.MAX_VALUE, iterations));
    }
}
