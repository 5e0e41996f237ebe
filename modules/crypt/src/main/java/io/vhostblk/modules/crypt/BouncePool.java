package io.vhostblk.modules.crypt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One queue's bounce memory for encrypted writes: a fixed native area cut into equal chunks, handed out
 * and returned through a stack of free chunk numbers. Only the queue's event loop uses it: no locks, and
 * nothing is allocated after construction.
 */
final class BouncePool {

    /** Chunk size: a multiple of every encryption sector size, so no sector straddles two chunks. */
    static final int CHUNK = 32 * 1024;

    private final MemorySegment area;
    private final int[] free;
    private int freeCount;

    BouncePool(Arena arena, long bytes) {
        int chunks = (int) Math.max(1, bytes / CHUNK);
        this.area = arena.allocate((long) chunks * CHUNK, 4096);
        this.free = new int[chunks];
        // Highest first, so that chunk 0, 1, 2... come out in address order and neighbours coalesce.
        for (int i = 0; i < chunks; i++) {
            free[i] = chunks - 1 - i;
        }
        this.freeCount = chunks;
    }

    int chunks() {
        return free.length;
    }

    int freeChunks() {
        return freeCount;
    }

    /** Chunks needed for {@code bytes}. */
    static int chunksFor(long bytes) {
        return (int) ((bytes + CHUNK - 1) / CHUNK);
    }

    /** Takes one free chunk and returns its number; the caller checked {@link #freeChunks()}. */
    int take() {
        return free[--freeCount];
    }

    void give(int chunk) {
        free[freeCount++] = chunk;
    }

    /** The whole area (chunk {@code c} starts at {@code c * CHUNK}). */
    MemorySegment area() {
        return area;
    }

    /** Zeroes the area: it held ciphertext only, but a wipe costs nothing at close. */
    void wipe() {
        area.fill((byte) 0);
    }
}
