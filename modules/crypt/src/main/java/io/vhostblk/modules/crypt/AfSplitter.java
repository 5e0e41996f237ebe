package io.vhostblk.modules.crypt;

import java.security.DigestException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;

/**
 * LUKS's anti-forensic information splitter (LUKS1 spec section 2.4): a key of n bytes becomes
 * {@code stripes} x n bytes of which every bit is needed to recover it, so destroying any part of a slot's
 * key material destroys the key. Split: s_1..s_{k-1} random, d_0 = 0, d_i = H(d_{i-1} xor s_i),
 * s_k = d_{k-1} xor key. H ("diffuse") hashes the buffer in digest-size pieces, piece j prefixed by j as a
 * big-endian 32-bit integer, the last piece truncated.
 */
public final class AfSplitter {

    private AfSplitter() {
    }

    /** Splits {@code key} into {@code stripes} stripes; the caller wipes the result. */
    static byte[] split(byte[] key, int stripes, HashSpec hash, SecureRandom random) {
        int n = key.length;
        byte[] material = new byte[n * stripes];
        byte[] d = new byte[n];
        MessageDigest md = hash.newDigest();
        byte[] scratch = new byte[hash.length];
        try {
            for (int i = 0; i < stripes - 1; i++) {
                byte[] stripe = new byte[n];
                random.nextBytes(stripe);
                System.arraycopy(stripe, 0, material, i * n, n);
                xorInto(d, material, i * n);
                diffuse(md, d, scratch);
                Arrays.fill(stripe, (byte) 0);
            }
            for (int k = 0; k < n; k++) {
                material[(stripes - 1) * n + k] = (byte) (d[k] ^ key[k]);
            }
            return material;
        } finally {
            Arrays.fill(d, (byte) 0);
            Arrays.fill(scratch, (byte) 0);
        }
    }

    /** Recovers an {@code n}-byte key from {@code stripes} stripes; the caller wipes the result. */
    static byte[] merge(byte[] material, int n, int stripes, HashSpec hash) {
        if (material.length < (long) n * stripes) {
            throw new IllegalArgumentException("key material too short: " + material.length + " < " + (long) n * stripes);
        }
        byte[] d = new byte[n];
        MessageDigest md = hash.newDigest();
        byte[] scratch = new byte[hash.length];
        try {
            for (int i = 0; i < stripes - 1; i++) {
                xorInto(d, material, i * n);
                diffuse(md, d, scratch);
            }
            byte[] key = new byte[n];
            for (int k = 0; k < n; k++) {
                key[k] = (byte) (d[k] ^ material[(stripes - 1) * n + k]);
            }
            return key;
        } finally {
            Arrays.fill(d, (byte) 0);
            Arrays.fill(scratch, (byte) 0);
        }
    }

    private static void xorInto(byte[] d, byte[] material, int offset) {
        for (int k = 0; k < d.length; k++) {
            d[k] ^= material[offset + k];
        }
    }

    /** H: replace each digest-size piece j of {@code buf} by hash(be32(j) || piece), truncating the last. */
    static void diffuse(MessageDigest md, byte[] buf, byte[] scratch) {
        int ds = scratch.length;
        byte[] iv = new byte[4];
        for (int j = 0, off = 0; off < buf.length; j++, off += ds) {
            int len = Math.min(ds, buf.length - off);
            iv[0] = (byte) (j >>> 24);
            iv[1] = (byte) (j >>> 16);
            iv[2] = (byte) (j >>> 8);
            iv[3] = (byte) j;
            md.update(iv);
            md.update(buf, off, len);
            try {
                md.digest(scratch, 0, ds);
            } catch (DigestException e) {
                throw new IllegalStateException("digest buffer too small", e);
            }
            System.arraycopy(scratch, 0, buf, off, len);
        }
    }
}
