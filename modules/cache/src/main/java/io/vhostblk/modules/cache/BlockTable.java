package io.vhostblk.modules.cache;

import java.util.Arrays;

/**
 * An open-addressing map from block number (≥ 0) to a non-negative int (a cache slot), with linear probing and
 * backward-shift deletion (no tombstones), sized once for its most entries: nothing is allocated after
 * construction. Single-threaded.
 */
final class BlockTable {
    private static final long EMPTY = -1;

    private final long[] keys;
    private final int[] values;
    private final int mask;
    private int size;

    /** A table for at most {@code capacity} entries (kept at most half full). */
    BlockTable(int capacity) {
        int n = Integer.highestOneBit(Math.max(4, capacity) * 2 - 1) << 1;
        keys = new long[n];
        values = new int[n];
        Arrays.fill(keys, EMPTY);
        mask = n - 1;
    }

    private int home(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }

    /** The value for {@code key}, or -1. */
    int get(long key) {
        for (int i = home(key); ; i = (i + 1) & mask) {
            long k = keys[i];
            if (k == key) {
                return values[i];
            }
            if (k == EMPTY) {
                return -1;
            }
        }
    }

    /** Sets {@code key} to {@code value}. */
    void put(long key, int value) {
        for (int i = home(key); ; i = (i + 1) & mask) {
            long k = keys[i];
            if (k == key) {
                values[i] = value;
                return;
            }
            if (k == EMPTY) {
                if (size * 2 >= keys.length) {
                    throw new IllegalStateException("block table full (" + size + " entries)");
                }
                keys[i] = key;
                values[i] = value;
                size++;
                return;
            }
        }
    }

    /** Removes {@code key}; returns its value or -1. */
    int remove(long key) {
        int i = home(key);
        while (keys[i] != key) {
            if (keys[i] == EMPTY) {
                return -1;
            }
            i = (i + 1) & mask;
        }
        int old = values[i];
        // Backward shift: move later entries of the probe run into the hole if their home allows it.
        int hole = i;
        for (int j = (i + 1) & mask; keys[j] != EMPTY; j = (j + 1) & mask) {
            int h = home(keys[j]);
            boolean movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
            if (movable) {
                keys[hole] = keys[j];
                values[hole] = values[j];
                hole = j;
            }
        }
        keys[hole] = EMPTY;
        size--;
        return old;
    }

    int size() {
        return size;
    }
}
