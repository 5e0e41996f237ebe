package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.compat.VirtioBlkHandler;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static io.vhostblk.virtio.SplitRingDriver.U32;
import static io.vhostblk.virtio.SplitRingDriver.U64;

/**
 * One virtqueue of a device driven the way a guest does it, on the test's thread: each request
 * is put in the ring, walked, submitted through the compat-lib (and so through the device's
 * hook chain) and completed before the call returns (the RAM driver is synchronous).
 */
final class GuestQueue implements AutoCloseable {
    static final int MAX_DATA = 64 * 1024;
    private static final int SIZE = 64;

    private final GuestRam ram;
    private final SplitRingDriver ring;
    private final SplitVirtqueue queue;
    private final VirtioBlkHandler context;
    private final long header;
    private final long data;
    private final long status;
    private int lastUsedLength = -1;

    GuestQueue(BlockDevice device) throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
        ring = new SplitRingDriver(ram, SIZE);
        queue = ring.deviceQueue(false, false);
        context = new VirtioBlkHandler(device, 0, SIZE, 2 * SIZE, (head, len) -> {
            queue.pushUsed(head, len);
            queue.publishUsed();
        });
        header = ram.alloc(16, 16);
        data = ram.alloc(MAX_DATA, 4096);
        status = ram.alloc(1, 1);
    }

    /** Writes {@code bytes} at {@code sector}; returns the virtio-blk status. */
    int write(long sector, byte[] bytes) throws Exception {
        MemorySegment.copy(bytes, 0, ram.at(data, bytes.length), ValueLayout.JAVA_BYTE, 0, bytes.length);
        return request(VirtioBlk.T_OUT, sector, bytes.length, false);
    }

    /** Reads {@code length} bytes at {@code sector}; fails the test unless the status is OK. */
    byte[] read(long sector, int length) throws Exception {
        int s = request(VirtioBlk.T_IN, sector, length, true);
        if (s != VirtioBlk.S_OK) {
            throw new AssertionError("read of " + length + " bytes at sector " + sector + ": status " + s);
        }
        return ram.at(data, length).toArray(ValueLayout.JAVA_BYTE);
    }

    /** A FLUSH; returns the status. */
    int flush() throws Exception {
        return request(VirtioBlk.T_FLUSH, 0, 0, false);
    }

    private int request(int type, long sector, int length, boolean writable) throws Exception {
        MemorySegment h = ram.at(header, 16);
        h.set(U32, 0, type);
        h.set(U32, 4, 0);
        h.set(U64, 8, sector);
        ram.at(status, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 0x7f);
        int head = length > 0
                ? ring.addChain(Buf.readable(header, 16), new Buf(data, length, writable), Buf.writable(status, 1))
                : ring.addChain(Buf.readable(header, 16), Buf.writable(status, 1));
        if (head < 0) {
            throw new AssertionError("no free descriptors: an earlier request never completed");
        }
        ring.publish();
        int popped = queue.popAvail();
        queue.walk(popped, context.chainFor(popped));
        context.submit(popped);
        context.flushBatch();
        context.reap();
        if (ring.reapUsed() != head) {
            throw new AssertionError("request at head " + head + " did not complete synchronously");
        }
        lastUsedLength = ring.lastUsedLength();
        return ram.at(status, 1).get(ValueLayout.JAVA_BYTE, 0);
    }

    int lastUsedLength() {
        return lastUsedLength;
    }

    @Override
    public void close() {
        context.close();
        ram.close();
    }
}
