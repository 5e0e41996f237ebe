package io.vhostblk.compat;

import io.vhostblk.drivers.DriverException;
import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitVirtqueue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import static io.vhostblk.virtio.SplitRingDriver.U32;
import static io.vhostblk.virtio.SplitRingDriver.U64;

/**
 * A guest driving one virtqueue of a {@link VirtioBlkHandler}: requests built as a Linux guest builds
 * them (header, data, status byte) in indirect chains, so a ring of N descriptors can hold N
 * requests in flight; the context's answers go to the used ring, and the guest side reaps them and
 * checks each head comes back exactly once.
 */
final class GuestRequests implements AutoCloseable {
    final GuestRam ram;
    final SplitRingDriver ring;
    final SplitVirtqueue queue;
    VirtioBlkHandler context;
    /** Every (head, length) the context handed to its {@link UsedSink}, in order. */
    final List<int[]> sinkCalls = new ArrayList<>();

    /** Header + status blocks, reused once their request is reaped. */
    private final ArrayDeque<Long> freeHeaders = new ArrayDeque<>();
    private final Map<Integer, Posted> outstanding = new HashMap<>();
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment pollFd = arena.allocate(Libc.POLLFD);
    private long submitted;
    private long completed;

    /** A request the guest made available and that was submitted to the context. */
    record Posted(int head, int type, long sector, long header, long status, long data, int length) {
    }

    /** A used element the guest reaped: the request, the used length, and its status byte. */
    record Done(Posted posted, int usedLength, int status) {
    }

    GuestRequests(long ramBytes, int ringSize) throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, ramBytes));
        ring = new SplitRingDriver(ram, ringSize);
        queue = ring.deviceQueue(false, true);
        for (int i = 0; i < ringSize; i++) {
            freeHeaders.add(ram.alloc(32, 16));
        }
    }

    VirtioBlkHandler open(BlockDevice device) throws DriverException {
        context = new VirtioBlkHandler(device, 0, ring.size(), 256, (head, len) -> {
            sinkCalls.add(new int[]{head, len});
            queue.pushUsed(head, len);
        });
        return context;
    }

    long buffer(int len, int fill) {
        long gpa = ram.alloc(Math.max(len, 1), 4096);
        ram.at(gpa, len).fill((byte) fill);
        return gpa;
    }

    byte[] bytes(long gpa, int len) {
        return ram.at(gpa, len).toArray(ValueLayout.JAVA_BYTE);
    }

    void put(long gpa, byte[] data) {
        MemorySegment.copy(data, 0, ram.at(gpa, data.length), ValueLayout.JAVA_BYTE, 0, data.length);
    }

    /** Makes a request available and submits it to the context (no flushBatch, no reap). */
    Posted start(int type, long sector, long dataGpa, int dataLen, boolean dataWritable) throws Exception {
        Long header = freeHeaders.poll();
        if (header == null) {
            throw new IllegalStateException("more requests in flight than the ring holds");
        }
        MemorySegment h = ram.at(header, 17);
        h.set(U32, 0, type);
        h.set(U32, 4, 0);
        h.set(U64, 8, sector);
        h.set(ValueLayout.JAVA_BYTE, 16, (byte) 0x7f);
        List<Buf> bufs = new ArrayList<>();
        bufs.add(Buf.readable(header, 16));
        if (dataLen > 0) {
            bufs.add(dataWritable ? Buf.writable(dataGpa, dataLen) : Buf.readable(dataGpa, dataLen));
        }
        bufs.add(Buf.writable(header + 16, 1));
        int head = ring.addIndirectChain(bufs.toArray(Buf[]::new));
        if (head < 0) {
            throw new IllegalStateException("no free descriptor");
        }
        ring.publish();
        int popped = queue.popAvail();
        if (popped != head) {
            throw new AssertionError("popped head " + popped + ", offered " + head);
        }
        Posted p = new Posted(head, type, sector, header, header + 16, dataGpa, dataLen);
        if (outstanding.putIfAbsent(head, p) != null) {
            throw new AssertionError("head " + head + " offered while still outstanding");
        }
        submitted++;
        queue.walk(head, context.chainFor(head));
        context.submit(head);
        return p;
    }

    /** Publishes what the context answered and reaps it as the guest; fails on a head not outstanding. */
    List<Done> reapUsed() {
        queue.publishUsed();
        List<Done> out = new ArrayList<>();
        int head;
        while ((head = ring.reapUsed()) >= 0) {
            Posted p = outstanding.remove(head);
            if (p == null) {
                throw new AssertionError("head " + head + " was answered but is not outstanding (answered twice?)");
            }
            int status = ram.at(p.status(), 1).get(ValueLayout.JAVA_BYTE, 0);
            out.add(new Done(p, ring.lastUsedLength(), status));
            freeHeaders.add(p.header());
            completed++;
        }
        return out;
    }

    /** Start, flush the batch, reap the driver, and take the one answer (which must be this request's). */
    Done run(int type, long sector, long dataGpa, int dataLen, boolean dataWritable) throws Exception {
        Posted p = start(type, sector, dataGpa, dataLen, dataWritable);
        context.flushBatch();
        context.reap();
        List<Done> done = reapUsed();
        if (done.size() != 1 || done.getFirst().posted() != p) {
            throw new AssertionError("expected exactly the answer to head " + p.head() + ", got " + done.size() + " answers");
        }
        return done.getFirst();
    }

    /** Runs the queue as its event loop would (mailbox fd, reap) until {@code done}, at most {@code millis}. */
    List<Done> loopUntil(BooleanSupplier done, long millis) {
        List<Done> all = new ArrayList<>();
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (true) {
            all.addAll(reapUsed());
            if (done.getAsBoolean()) {
                return all;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the queue did not get there within " + millis + " ms");
            }
            pollFd.set(ValueLayout.JAVA_INT, 0, context.mailboxFd());
            pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollFd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
            int rc = Libc.poll(pollFd, 1, 1);
            if (rc > 0) {
                context.mailboxSeen();
            }
            context.flushBatch();
            context.reap();
        }
    }

    int outstanding() {
        return outstanding.size();
    }

    long submitted() {
        return submitted;
    }

    long completed() {
        return completed;
    }

    @Override
    public void close() {
        if (context != null) {
            context.close();
        }
        arena.close();
        ram.close();
    }
}
