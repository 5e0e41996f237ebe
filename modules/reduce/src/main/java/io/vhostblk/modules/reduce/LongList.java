package io.vhostblk.modules.reduce;

import java.util.Arrays;

/** A growable list of primitive longs (no boxing on the request path). */
final class LongList {

    private long[] values = new long[64];
    private int size;

    void add(long v) {
        if (size == values.length) {
            values = Arrays.copyOf(values, size * 2);
        }
        values[size++] = v;
    }

    void addAll(LongList other) {
        for (int i = 0; i < other.size; i++) {
            add(other.values[i]);
        }
    }

    long get(int i) {
        return values[i];
    }

    int size() {
        return size;
    }

    /** Sorts the values in ascending order. */
    void sort() {
        Arrays.sort(values, 0, size);
    }

    void clear() {
        size = 0;
    }
}
