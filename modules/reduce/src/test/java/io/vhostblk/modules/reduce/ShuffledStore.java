package io.vhostblk.modules.reduce;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A RAM image whose operations complete later and in random order ({@link #step}), as a real queue of
 * asynchronous I/O does; reads and writes take effect when they complete. Inline until {@link #shuffle} is called,
 * so a volume can be opened on it.
 */
final class ShuffledStore extends MemoryStore {

    private final List<Runnable> inFlight = new ArrayList<>();
    private final List<Runnable> heldReads = new ArrayList<>();
    private boolean holdReads;
    private final Random random;
    private boolean shuffled;

    ShuffledStore(MemorySegment image, long seed) {
        super(image);
        this.random = new Random(seed);
    }

    void shuffle() {
        shuffled = true;
    }

    /** Reads issued from now on wait until {@link #releaseReads}. */
    void holdReads() {
        holdReads = true;
    }

    void releaseReads() {
        holdReads = false;
        inFlight.addAll(heldReads);
        heldReads.clear();
    }

    /** Completes one random operation in flight; false if none is. */
    boolean step() {
        if (inFlight.isEmpty()) {
            return false;
        }
        inFlight.remove(random.nextInt(inFlight.size())).run();
        return true;
    }

    /** Completes operations until none is in flight (including those issued meanwhile). */
    void drain() {
        while (step()) {
            // each step may issue more
        }
    }

    private void later(Runnable r) {
        if (shuffled) {
            inFlight.add(r);
        } else {
            r.run();
        }
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        if (holdReads) {
            heldReads.add(() -> super.read(offset, buffer, done));
            return;
        }
        later(() -> super.read(offset, buffer, done));
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        later(() -> super.write(offset, buffer, done));
    }

    @Override
    public void flush(IoCompletion done) {
        later(() -> super.flush(done));
    }

    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        later(() -> super.deallocate(offset, length, done));
    }
}
