package io.vhostblk.modules.crypt;

import java.security.MessageDigest;
import java.util.Arrays;

/** The PBKDF2 digest of the master key that tells a right passphrase from a wrong one (LUKS1 mk-digest, LUKS2 digests). */
record MasterKeyDigest(HashSpec hash, int iterations, byte[] salt, byte[] digest) {

    /** LUKS1's mk-digest is 20 bytes (a SHA-1 length, kept for every hash); LUKS2 stores the full HMAC length. */
    static MasterKeyDigest compute(HashSpec hash, int iterations, byte[] salt, byte[] masterKey, int length) {
        return new MasterKeyDigest(hash, iterations, salt, Pbkdf2.derive(hash, masterKey, salt, iterations, length));
    }

    /** Constant-time check of a candidate master key. */
    boolean matches(byte[] candidate) {
        byte[] d = Pbkdf2.derive(hash, candidate, salt, iterations, digest.length);
        try {
            return MessageDigest.isEqual(d, digest);
        } finally {
            Arrays.fill(d, (byte) 0);
        }
    }

    @Override
    public String toString() {
        return "MasterKeyDigest[pbkdf2 " + hash.luksName + " iterations=" + iterations + "]";
    }
}
