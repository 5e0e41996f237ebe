package io.vhostblk.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * What a write job writes ({@code --data}), for back-ends whose cost depends on the content (dedup, compression):
 * every write gets new content except with {@code zeros} (the buffers stay zero) and {@code duplicate} (one of 16
 * fixed blocks). {@code random} is incompressible and never repeats; {@code compressible} is random in its first
 * half and zeros in the second (about 2:1 with LZ4); {@code duplicate} makes every block after the first 16 a
 * duplicate. {@code --verify} writes its own per-offset pattern instead.
 */
enum WriteData {
    ZEROS, RANDOM, COMPRESSIBLE, DUPLICATE;

    private static final ValueLayout.OfLong WORD = ValueLayout.JAVA_LONG_UNALIGNED;
    /** Distinct blocks of {@code duplicate}. */
    static final int DISTINCT = 16;

    static WriteData parse(String text) {
        try {
            return valueOf(text.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + text + "' is not zeros, random, compressible or duplicate");
        }
    }

    /** Fills {@code buf[0, len)} for write number {@code n} of queue {@code queue}. */
    void fill(MemorySegment buf, int len, long seed, int queue, long n) {
        switch (this) {
            case ZEROS -> {
                // The buffers were zeroed when the job started.
            }
            case RANDOM -> words(buf, 0, len, seed, ((long) queue << 48) ^ n);
            case COMPRESSIBLE -> {
                words(buf, 0, len / 2, seed, ((long) queue << 48) ^ n);
                buf.asSlice(len / 2, len - len / 2).fill((byte) 0);
            }
            case DUPLICATE -> words(buf, 0, len, seed, -1 - (n % DISTINCT));
        }
    }

    private static void words(MemorySegment buf, int from, int to, long seed, long stream) {
        long salt = mix(seed * 0x9e3779b97f4a7c15L ^ stream);
        for (int i = from; i + 8 <= to; i += 8) {
            buf.set(WORD, i, mix(salt + i));
        }
    }

    /** SplitMix64's finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
