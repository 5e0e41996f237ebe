package io.vhostblk.modules.crypt;

/**
 * How to format an image.
 *
 * @param version LUKS1 or LUKS2
 * @param sectorSize encryption sector size: 512, or (LUKS2 only) up to 4096
 * @param payloadSize bytes the guest sees; 0 keeps an existing file's size (its payload is what follows the header)
 * @param kdf slot key derivation for the first key slot
 */
public record FormatOptions(LuksVersion version, int sectorSize, long payloadSize, KdfOptions kdf) {

    public FormatOptions {
        XtsAes256.checkSectorSize(sectorSize);
        if (version == LuksVersion.LUKS1 && sectorSize != 512) {
            throw new IllegalArgumentException("LUKS1 supports only 512-byte sectors, not " + sectorSize);
        }
        if (version == LuksVersion.LUKS1 && kdf.argon2()) {
            throw new IllegalArgumentException("LUKS1 supports only PBKDF2 key slots");
        }
        if (payloadSize < 0 || payloadSize % sectorSize != 0) {
            throw new IllegalArgumentException("payload size " + payloadSize + " is not a non-negative multiple of the sector size " + sectorSize);
        }
    }

    /** Defaults for a version: 512-byte sectors, the version's default KDF, keep the file's size. */
    public static FormatOptions defaults(LuksVersion version) {
        return new FormatOptions(version, 512, 0, KdfOptions.defaults(version));
    }

    public FormatOptions withSectorSize(int size) {
        return new FormatOptions(version, size, payloadSize, kdf);
    }

    public FormatOptions withPayloadSize(long size) {
        return new FormatOptions(version, sectorSize, size, kdf);
    }

    public FormatOptions withKdf(KdfOptions options) {
        return new FormatOptions(version, sectorSize, payloadSize, options);
    }
}
