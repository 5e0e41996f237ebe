package io.vhostblk.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The --verify data: every 8-byte word of the disk holds a hash of its own byte offset and the
 * seed, so any block's content is known without remembering it, and a block read from the wrong
 * place (or left unwritten) fails the check.
 */
final class DataPattern {
    private static final ValueLayout.OfLong WORD = ValueLayout.JAVA_LONG_UNALIGNED;
    /** What a read buffer holds before the back-end fills it: no back-end may leave it unchanged and pass. */
    static final long POISON = 0xdead_beef_dead_beefL;

    private final long salt;

    DataPattern(long seed) {
        this.salt = mix(seed ^ 0x5eed_0f_b10c_5L);
    }

    /** The word at disk byte offset {@code diskOffset} (a multiple of 8). */
    long word(long diskOffset) {
        return mix(diskOffset ^ salt);
    }

    /** Fills buf[0, len) with the pattern of the disk range starting at diskOffset. */
    void fill(MemorySegment buf, long diskOffset, int len) {
        for (int i = 0; i < len; i += 8) {
            buf.set(WORD, i, word(diskOffset + i));
        }
    }

    /** Fills buf[0, len) with {@link #POISON}. */
    static void poison(MemorySegment buf, int len) {
        for (int i = 0; i < len; i += 8) {
            buf.set(WORD, i, POISON);
        }
    }

    /** The first byte offset in buf[0, len) that differs from the pattern, or -1 when all match. */
    int firstMismatch(MemorySegment buf, long diskOffset, int len) {
        for (int i = 0; i < len; i += 8) {
            if (buf.get(WORD, i) != word(diskOffset + i)) {
                return i;
            }
        }
        return -1;
    }

    /** SplitMix64's finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
