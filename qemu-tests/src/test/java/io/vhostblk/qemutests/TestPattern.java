package io.vhostblk.qemutests;

import java.util.SplittableRandom;

/**
 * The deterministic data the guest writes: pseudo-random bytes from a fixed seed, so every region of
 * the disk gets distinct content and a misplaced or stale block shows up as a mismatch.
 */
final class TestPattern {
    /** Size of /pattern in the initramfs. */
    static final int SIZE = 8 << 20;
    private static final long SEED = 0x76686f73745f626cL;
    private static final byte[] BYTES = generate();

    private TestPattern() {
    }

    /** The pattern bytes; callers must not modify the array. */
    static byte[] bytes() {
        return BYTES;
    }

    private static byte[] generate() {
        byte[] data = new byte[SIZE];
        new SplittableRandom(SEED).nextBytes(data);
        return data;
    }
}
