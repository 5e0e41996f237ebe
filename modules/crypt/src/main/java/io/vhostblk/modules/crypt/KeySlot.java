package io.vhostblk.modules.crypt;

/**
 * One key slot: where its encrypted, AF-split copy of the master key lives and how a passphrase becomes the
 * key that decrypts it. Offsets and sizes are in bytes from the start of the image. Holds no secret.
 */
record KeySlot(int index, boolean active, KdfParams kdf, long areaOffset, long areaSize, int stripes, int keyBytes, HashSpec afHash) {

    /** LUKS1's fixed stripe count and cryptsetup's default for LUKS2. */
    static final int STRIPES = 4000;

    /** Bytes of split material, rounded up to whole 512-byte sectors as it is encrypted and stored. */
    long materialBytes() {
        long raw = (long) keyBytes * stripes;
        return (raw + 511) / 512 * 512;
    }

    /** An inactive slot at the same index and area. */
    KeySlot disabled() {
        return new KeySlot(index, false, kdf, areaOffset, areaSize, stripes, keyBytes, afHash);
    }

    @Override
    public String toString() {
        return "KeySlot[" + index + (active ? " active " + kdf.describe() : " inactive") + " area=" + areaOffset + "+" + areaSize + "]";
    }
}
