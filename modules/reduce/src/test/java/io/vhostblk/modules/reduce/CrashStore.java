package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A disk with a volatile write cache that loses power after its {@code crashAfter}-th write or flush: that one
 * and the ones before complete normally; from the next on every operation fails with EIO (power is gone), so a
 * crash can fall between any write and the flush after it. What a crash
 * leaves is {@link #imageAfterCrash}: the image as of the last completed flush plus any subset of the writes since,
 * cut into 4 KiB pieces and applied in any order.
 */
final class CrashStore implements BackingStore {

    private static final int PIECE = 4096;

    private record Piece(long offset, byte[] data) {
    }

    private final MemorySegment durable;
    private final MemorySegment current;
    private final List<Piece> unflushed = new ArrayList<>();
    private final long crashAfter;
    /** Writes and flushes asked for, including the first refused one. */
    long steps;
    boolean crashed;

    CrashStore(MemorySegment image, long crashAfter) {
        this.durable = Arena.ofAuto().allocate(image.byteSize(), 4096).copyFrom(image);
        this.current = Arena.ofAuto().allocate(image.byteSize(), 4096).copyFrom(image);
        this.crashAfter = crashAfter;
    }

    @Override
    public long size() {
        return current.byteSize();
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        if (crashed) {
            done.complete(Errno.EIO);
            return;
        }
        MemorySegment.copy(current, offset, buffer, 0, buffer.byteSize());
        done.complete(0);
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        if (powerLost()) {
            done.complete(Errno.EIO);
            return;
        }
        MemorySegment.copy(buffer, 0, current, offset, buffer.byteSize());
        for (long at = 0; at < buffer.byteSize(); at += PIECE) {
            long n = Math.min(PIECE, buffer.byteSize() - at);
            unflushed.add(new Piece(offset + at, buffer.asSlice(at, n).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
        }
        done.complete(0);
    }

    @Override
    public void flush(IoCompletion done) {
        if (powerLost()) {
            done.complete(Errno.EIO);
            return;
        }
        durable.copyFrom(current);
        unflushed.clear();
        done.complete(0);
    }

    private boolean powerLost() {
        if (!crashed && ++steps > crashAfter) {
            crashed = true;
        }
        return crashed;
    }

    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        // A hole is a write of zeros as far as a crash is concerned: it may land or not, in any order.
        write(offset, Arena.ofAuto().allocate(length, 4096), done);
    }

    @Override
    public void close() {
    }

    /** What the platter holds after the crash: durable data plus a random subset of unflushed pieces, reordered. */
    MemorySegment imageAfterCrash(Random random, int mode) {
        MemorySegment image = Arena.ofAuto().allocate(durable.byteSize(), 4096).copyFrom(durable);
        List<Piece> landed = new ArrayList<>();
        for (Piece p : unflushed) {
            boolean keep = switch (mode) {
                case 0 -> false;          // nothing since the last flush
                case 1 -> true;           // everything, in order
                default -> random.nextBoolean();
            };
            if (keep) {
                landed.add(p);
            }
        }
        if (mode > 1) {
            Collections.shuffle(landed, random);
        }
        for (Piece p : landed) {
            MemorySegment.copy(MemorySegment.ofArray(p.data()), 0, image, p.offset(), p.data().length);
        }
        return image;
    }

    int unflushedPieces() {
        return unflushed.size();
    }
}
