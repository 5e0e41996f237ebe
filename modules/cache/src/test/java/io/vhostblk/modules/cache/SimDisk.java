package io.vhostblk.modules.cache;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A disk with a volatile write cache for tests. Completions run at once, or (deferred) when the test picks them,
 * in any order; data moves when an operation completes. Power (shared by the disks of one host) can fail after
 * the N-th write or flush of any of them: from then on everything fails with EIO, and {@link #imageAfterCrash}
 * is what the disk holds afterwards: the image at its last completed flush plus any subset of the 4 KiB pieces
 * written since, applied in any order (a 4 KiB write is atomic, as the project's crash model assumes; the cache's
 * table entries need only 512-byte atomicity).
 */
final class SimDisk implements Store {

    /** The power of one host: fails after {@code crashAfter} writes and flushes of all its disks. */
    static final class Power {
        final long crashAfter;
        long steps;
        boolean lost;

        Power(long crashAfter) {
            this.crashAfter = crashAfter;
        }

        boolean step() {
            if (lost) {
                return false;
            }
            if (++steps > crashAfter) {
                lost = true;
                return false;
            }
            return true;
        }
    }

    private record Piece(long offset, byte[] data) {
    }

    private static final int SECTOR = 4096;

    private final MemorySegment durable;
    final MemorySegment current;
    private final List<Piece> unflushed = new ArrayList<>();
    private final Power power;
    private final List<Runnable> pending;
    long reads;
    long writes;
    long flushes;
    long discards;

    SimDisk(long size, Power power, List<Runnable> pending) {
        this(Arena.ofAuto().allocate(size, 4096), power, pending);
    }

    SimDisk(MemorySegment image, Power power, List<Runnable> pending) {
        this.durable = Arena.ofAuto().allocate(image.byteSize(), 4096).copyFrom(image);
        this.current = Arena.ofAuto().allocate(image.byteSize(), 4096).copyFrom(image);
        this.power = power;
        this.pending = pending;
    }

    private void run(Runnable op) {
        if (pending == null) {
            op.run();
        } else {
            pending.add(op);
        }
    }

    @Override
    public void read(long offset, MemorySegment buffer, Done done) {
        reads++;
        run(() -> {
            if (power.lost) {
                done.complete(-Errno.EIO);
                return;
            }
            MemorySegment.copy(current, offset, buffer, 0, buffer.byteSize());
            done.complete(0);
        });
    }

    @Override
    public void write(long offset, MemorySegment buffer, Done done) {
        writes++;
        run(() -> {
            if (!power.step()) {
                done.complete(-Errno.EIO);
                return;
            }
            MemorySegment.copy(buffer, 0, current, offset, buffer.byteSize());
            for (long at = 0; at < buffer.byteSize(); at += SECTOR) {
                unflushed.add(new Piece(offset + at, buffer.asSlice(at, SECTOR).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
            }
            done.complete(0);
        });
    }

    @Override
    public void flush(Done done) {
        flushes++;
        run(() -> {
            if (!power.step()) {
                done.complete(-Errno.EIO);
                return;
            }
            durable.copyFrom(current);
            unflushed.clear();
            done.complete(0);
        });
    }

    @Override
    public void discard(long offset, long length, boolean zeroes, Done done) {
        discards++;
        run(() -> {
            if (!power.step()) {
                done.complete(-Errno.EIO);
                return;
            }
            current.asSlice(offset, length).fill((byte) 0);
            for (long at = 0; at < length; at += SECTOR) {
                unflushed.add(new Piece(offset + at, new byte[SECTOR]));
            }
            done.complete(0);
        });
    }

    /** What the disk holds after the power failed: its flushed image and any subset of later pieces, in any order. */
    MemorySegment imageAfterCrash(Random random) {
        MemorySegment image = Arena.ofAuto().allocate(durable.byteSize(), 4096).copyFrom(durable);
        List<Piece> landed = new ArrayList<>();
        for (Piece p : unflushed) {
            if (random.nextBoolean()) {
                landed.add(p);
            }
        }
        Collections.shuffle(landed, random);
        for (Piece p : landed) {
            MemorySegment.copy(MemorySegment.ofArray(p.data()), 0, image, p.offset(), SECTOR);
        }
        return image;
    }
}
