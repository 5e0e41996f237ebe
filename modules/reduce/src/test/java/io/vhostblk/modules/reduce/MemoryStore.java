package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A RAM image that completes every operation inside the call; counts what was asked of it. */
class MemoryStore implements BackingStore {

    final MemorySegment image;
    int reads;
    int writes;
    int flushes;
    long deallocatedBytes;

    MemoryStore(long size) {
        image = Arena.ofAuto().allocate(size, 4096);
    }

    MemoryStore(MemorySegment image) {
        this.image = image;
    }

    @Override
    public long size() {
        return image.byteSize();
    }

    @Override
    public void read(long offset, MemorySegment buffer, IoCompletion done) {
        reads++;
        MemorySegment.copy(image, offset, buffer, 0, buffer.byteSize());
        done.complete(0);
    }

    @Override
    public void write(long offset, MemorySegment buffer, IoCompletion done) {
        writes++;
        MemorySegment.copy(buffer, 0, image, offset, buffer.byteSize());
        done.complete(0);
    }

    @Override
    public void flush(IoCompletion done) {
        flushes++;
        done.complete(0);
    }

    @Override
    public void deallocate(long offset, long length, IoCompletion done) {
        deallocatedBytes += length;
        image.asSlice(offset, length).fill((byte) 0);
        done.complete(0);
    }

    @Override
    public void close() {
    }
}
