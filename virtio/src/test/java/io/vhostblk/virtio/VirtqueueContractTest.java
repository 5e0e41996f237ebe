package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rules both ring formats keep, run against each: hostile chains and indirect tables are
 * refused per request with the status byte written where it is found, buffers are split at
 * region boundaries, and a driver and the device on two threads agree. Each ring's own layout
 * rules stay in {@link SplitVirtqueueTest} and {@link PackedVirtqueueTest}.
 */
class VirtqueueContractTest {
    private static final long MB = 1 << 20;
    /** Region 0 [0, 1M) and region 1 [1M, 2M) are adjacent; region 2 [4G, 4G+1M) is behind a hole. */
    private static final long FAR = 0x1_0000_0000L;
    private static final int SIZE = 8;
    private static final int WRITE = 2;
    private static final int INDIRECT = 4;

    private GuestRam ram;
    private DescriptorChain chain;
    private long data;

    @BeforeEach
    void setUp() throws VirtioException {
        ram = GuestRam.anonymous(new GuestRam.Region(0, MB), new GuestRam.Region(MB, MB), new GuestRam.Region(FAR, MB));
        chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
        data = ram.alloc(64 * 1024, 4096);
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    private RingDriver ring(String kind) {
        return kind.equals("split") ? new SplitRingDriver(ram, SIZE) : new PackedRingDriver(ram, SIZE);
    }

    /** Publishes what was offered and takes it as the device does. */
    private static int take(RingDriver r, Virtqueue q) throws VirtioException {
        r.publish();
        int head = q.popAvail();
        assertTrue(head >= 0, "nothing available");
        return head;
    }

    private void rejected(Virtqueue q, int head, String fragment) {
        DescriptorException e = assertThrows(DescriptorException.class, () -> q.walk(head, chain));
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    /** Answers a rejected request as the queue loop does and checks the driver gets it with that length. */
    private static void answerRejected(RingDriver r, Virtqueue q, int head, int expectedLength) {
        int written = q.answerRejected(head, (byte) VirtioBlk.S_IOERR);
        assertEquals(expectedLength, written);
        q.pushUsed(head, written);
        q.publishUsed();
        assertEquals(head, r.reapUsed());
        assertEquals(expectedLength, r.lastUsedLength());
    }

    private byte statusAt(long gpa) {
        return ram.at(gpa, 1).get(ValueLayout.JAVA_BYTE, 0);
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void readableAfterWritableIsRejectedWithTheStatusWhereItBelongs(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        long status = data + 4000;
        r.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 8), Buf.readable(data + 32, 8), Buf.writable(status, 1));
        int head = take(r, q);
        rejected(q, head, "readable descriptor after a writable one");
        answerRejected(r, q, head, 1);
        assertEquals(VirtioBlk.S_IOERR, statusAt(status));
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void buffersOutsideGuestMemoryAreRejected(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        r.addChain(Buf.readable(2 * MB + 4096, 16), Buf.readable(data, 1));
        int head = take(r, q);
        rejected(q, head, "buffer 0x201000+0x10 is not inside guest memory");
        answerRejected(r, q, head, 0); // the last buffer is readable: no status byte to write
        r.addChain(Buf.readable(data, 16), Buf.writable(FAR + MB - 8, 16));
        head = take(r, q);
        rejected(q, head, "not inside guest memory (0x100100000 unmapped)");
        answerRejected(r, q, head, 0); // the status byte itself lies outside
        r.addChain(Buf.readable(-4096, 16));
        head = take(r, q);
        rejected(q, head, "not inside guest memory");
        answerRejected(r, q, head, 0);
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void aBufferCrossingIntoAnAdjacentRegionIsSplitAndTotalsBeyond32BitsAreRejected(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        r.addChain(Buf.writable(MB - 100, 300));
        int head = take(r, q);
        q.walk(head, chain);
        assertEquals(2, chain.segmentCount());
        assertEquals(1, chain.descriptorCount());
        assertEquals(100, chain.length(0));
        assertEquals(200, chain.length(1));
        assertEquals(ram.memory().translate(MB - 100, 100), chain.address(0));
        assertEquals(ram.memory().translate(MB, 200), chain.address(1));
        q.pushUsed(head, 300);
        q.publishUsed();
        assertEquals(head, r.reapUsed());
        r.addChain(Buf.writable(data, 2), Buf.writable(data, -1));
        head = take(r, q);
        rejected(q, head, "total chain length exceeds 2^32-1");
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void aChainNeedingMoreSegmentsThanTheCapacityIsRejected(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        r.addChain(Buf.readable(data, 16), Buf.readable(data + 16, 16), Buf.writable(data + 32, 1));
        int head = take(r, q);
        DescriptorException e = assertThrows(DescriptorException.class, () -> q.walk(head, new DescriptorChain(2)));
        assertTrue(e.getMessage().contains("more than 2 segments"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void indirectNeedsNegotiation(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, false);
        long table = ram.alloc(32, 16);
        r.writeTableEntry(table, 0, data, 16, 0, true);
        r.writeTableEntry(table, 1, data + 16, 1, WRITE, false);
        int head = r.addIndirectTable(table, 32);
        assertEquals(head, take(r, q));
        rejected(q, head, "VIRTIO_RING_F_INDIRECT_DESC not negotiated");
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void badIndirectTablesAreRejected(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        long table = ram.alloc(16L * SIZE * 2, 16);
        r.writeTableEntry(table, 0, data, 16, 0, false); // readable: no status byte in any of them
        // Empty, ragged, longer than the queue, outside guest memory, straddling two regions.
        String[] problems = {"indirect table length 0", "indirect table length 24", "of at most 8 entries",
                "indirect table 0x300000+0x10 is not inside guest memory", "indirect table 0xffff0+0x20 is not inside guest memory"};
        long[] addrs = {table, table, table, 3 * MB, MB - 16};
        int[] lens = {0, 24, 16 * (SIZE + 1), 16, 32};
        for (int i = 0; i < problems.length; i++) {
            int head = r.addIndirectTable(addrs[i], lens[i]);
            assertEquals(head, take(r, q));
            rejected(q, head, problems[i]);
            answerRejected(r, q, head, 0);
        }
        // Nested: entry 1 points at another table.
        r.writeTableEntry(table, 0, data, 16, 0, true);
        r.writeTableEntry(table, 1, table + 256, 16, INDIRECT, false);
        int head = r.addIndirectTable(table, 32);
        assertEquals(head, take(r, q));
        rejected(q, head, "indirect descriptor 1: nested indirect table");
        answerRejected(r, q, head, 0);
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void readableAfterWritableInsideATableIsRejectedWithTheStatusFound(String kind) throws Exception {
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        long table = ram.alloc(48, 16);
        long status = data + 5000;
        r.writeTableEntry(table, 0, data, 16, WRITE, true);
        r.writeTableEntry(table, 1, data + 16, 8, 0, true);
        r.writeTableEntry(table, 2, status, 1, WRITE, false);
        int head = r.addIndirectTable(table, 48);
        assertEquals(head, take(r, q));
        rejected(q, head, "indirect descriptor 1: readable descriptor after a writable one");
        answerRejected(r, q, head, 1);
        assertEquals(VirtioBlk.S_IOERR, statusAt(status));
    }

    @ParameterizedTest
    @ValueSource(strings = {"split", "packed"})
    void driverAndDeviceOnTwoThreadsAgree(String kind) throws Exception {
        // Not a proof of ordering, but it exercises acquire/release under real concurrency.
        int rounds = 20_000;
        RingDriver r = ring(kind);
        Virtqueue q = r.deviceQueue(false, true);
        long buf = ram.alloc(8L * SIZE, 8);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread device = new Thread(() -> {
            DescriptorChain c = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
            int done = 0;
            try {
                while (done < rounds) {
                    int head = q.popAvail();
                    if (head < 0) {
                        Thread.yield(); // CI machines may have two cores: do not starve the driver
                        continue;
                    }
                    q.walk(head, c);
                    long v = c.regionSegment(0).get(ValueLayout.JAVA_LONG_UNALIGNED, c.regionOffset(0));
                    q.pushUsed(head, (int) v);
                    q.publishUsed();
                    done++;
                }
            } catch (VirtioException | RuntimeException | Error e) {
                failure.set(e);
            }
        });
        device.start();
        long deadline = System.nanoTime() + 60_000_000_000L;
        int sent = 0;
        int received = 0;
        while (received < rounds) {
            if (failure.get() != null) {
                throw new AssertionError("device thread failed", failure.get());
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + received + " completions");
            }
            if (sent < rounds && r.canAdd()) {
                // The value is written before the descriptor is published: the device must see it.
                int slot = sent % SIZE;
                ram.at(buf + 8L * slot, 8).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, sent);
                assertTrue(r.addChain(Buf.writable(buf + 8L * slot, 8)) >= 0);
                r.publish();
                sent++;
            }
            if (r.reapUsed() >= 0) {
                assertEquals(received, r.lastUsedLength());
                received++;
            } else if (sent == rounds || !r.canAdd()) {
                Thread.yield();
            }
        }
        device.join();
    }
}
