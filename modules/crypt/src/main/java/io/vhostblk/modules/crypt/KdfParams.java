package io.vhostblk.modules.crypt;

import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/** A key slot's passphrase-to-key function and its stored (public) parameters. */
sealed interface KdfParams {

    /** Derives a {@code length}-byte slot key from the secret; the caller wipes the result. */
    byte[] derive(Secret secret, int length);

    /** One-line description for dumps: parameters only, never the salt's use as key material. */
    String describe();

    /** PBKDF2 with an HMAC hash, the only KDF of LUKS1 and an option in LUKS2. */
    record Pbkdf2Params(HashSpec hash, int iterations, byte[] salt) implements KdfParams {
        @Override
        public byte[] derive(Secret secret, int length) {
            return Pbkdf2.derive(hash, secret.bytes(), salt, iterations, length);
        }

        @Override
        public String describe() {
            return "pbkdf2 hash=" + hash.luksName + " iterations=" + iterations;
        }

        @Override
        public String toString() {
            return describe();
        }
    }

    /** Argon2i or Argon2id (version 0x13) as LUKS2 uses them: time cost, memory in KiB, lanes ("cpus"). */
    record Argon2Params(boolean id, int time, int memoryKiB, int cpus, byte[] salt) implements KdfParams {
        @Override
        public byte[] derive(Secret secret, int length) {
            Argon2Parameters params = new Argon2Parameters.Builder(id ? Argon2Parameters.ARGON2_id : Argon2Parameters.ARGON2_i)
                    .withVersion(Argon2Parameters.ARGON2_VERSION_13)
                    .withIterations(time)
                    .withMemoryAsKB(memoryKiB)
                    .withParallelism(cpus)
                    .withSalt(salt)
                    .build();
            Argon2BytesGenerator generator = new Argon2BytesGenerator();
            generator.init(params);
            byte[] out = new byte[length];
            generator.generateBytes(secret.bytes(), out);
            return out;
        }

        String typeName() {
            return id ? "argon2id" : "argon2i";
        }

        @Override
        public String describe() {
            return typeName() + " time=" + time + " memory=" + memoryKiB + "KiB cpus=" + cpus;
        }

        @Override
        public String toString() {
            return describe();
        }
    }
}
