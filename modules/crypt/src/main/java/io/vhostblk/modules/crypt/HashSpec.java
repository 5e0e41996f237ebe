package io.vhostblk.modules.crypt;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;
import javax.crypto.Mac;

/** A LUKS hash-spec name ("sha256", "sha1", "sha512") mapped to the JDK's digest and HMAC algorithms. */
enum HashSpec {
    SHA1("sha1", "SHA-1", "HmacSHA1", 20),
    SHA256("sha256", "SHA-256", "HmacSHA256", 32),
    SHA512("sha512", "SHA-512", "HmacSHA512", 64);

    final String luksName;
    final String digestAlgorithm;
    final String macAlgorithm;
    final int length;

    HashSpec(String luksName, String digestAlgorithm, String macAlgorithm, int length) {
        this.luksName = luksName;
        this.digestAlgorithm = digestAlgorithm;
        this.macAlgorithm = macAlgorithm;
        this.length = length;
    }

    /** The spec for a LUKS hash name, or null when we do not support it. */
    static HashSpec byLuksName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (HashSpec h : values()) {
            if (h.luksName.equals(n)) {
                return h;
            }
        }
        return null;
    }

    MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance(digestAlgorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + digestAlgorithm, e);
        }
    }

    Mac newMac() {
        try {
            return Mac.getInstance(macAlgorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks " + macAlgorithm, e);
        }
    }
}
