package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.SplittableRandom;

import static io.vhostblk.virtio.PackedVirtqueue.DESC_F_INDIRECT;
import static io.vhostblk.virtio.PackedVirtqueue.DESC_F_WRITE;
import static io.vhostblk.virtio.PackedVirtqueue.EVENT_FLAG_DESC;
import static io.vhostblk.virtio.PackedVirtqueue.EVENT_FLAG_DISABLE;
import static io.vhostblk.virtio.PackedVirtqueue.EVENT_FLAG_ENABLE;
import static io.vhostblk.virtio.PackedVirtqueue.WRAP;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PackedVirtqueueTest {
    private static final long MB = 1 << 20;
    /** Region 0 [0, 1M) and region 1 [1M, 2M) are adjacent; region 2 [4G, 4G+1M) is behind a hole. */
    private static final long FAR = 0x1_0000_0000L;
    private static final int SIZE = 8;

    private GuestRam ram;
    private PackedRingDriver driver;
    private DescriptorChain chain;
    private long data;

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, MB), new GuestRam.Region(MB, MB), new GuestRam.Region(FAR, MB));
        driver = new PackedRingDriver(ram, SIZE);
        chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
        data = ram.alloc(64 * 1024, 4096);
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    private PackedVirtqueue queue() throws VirtioException {
        return driver.deviceQueue(false, true);
    }

    private void rejected(PackedVirtqueue q, int id, String fragment) {
        DescriptorException e = assertThrows(DescriptorException.class, () -> q.walk(id, chain));
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    private static void brokenBy(PackedVirtqueue q, String fragment) {
        VirtioException e = assertThrows(VirtioException.class, q::popAvail);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    // ---- construction and vring base ----

    @Test
    void rejectsBadSizesBasesAndAlignment() {
        GuestMemory m = ram.memory();
        long d = GuestRam.userAddr(driver.descGpa());
        long a = GuestRam.userAddr(driver.driverEventGpa());
        long u = GuestRam.userAddr(driver.deviceEventGpa());
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, 0, d, a, u, 0, false, false));
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, 32769, d, a, u, 0, false, false));
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, SIZE, d, a, u, SIZE, false, false));
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, SIZE, d, a, u, WRAP | (SIZE << 16), false, false));
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, SIZE, d + 8, a, u, 0, false, false));
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, SIZE, d, a + 2, u, 0, false, false));
        assertThrows(VirtioException.class, () -> new PackedVirtqueue(m, SIZE, GuestRam.userAddr(2 * MB), a, u, 0, false, false));
    }

    @Test
    void sizeNeedNotBeAPowerOfTwo() throws Exception {
        PackedRingDriver d = new PackedRingDriver(ram, 6);
        PackedVirtqueue q = d.deviceQueue(false, false);
        for (int round = 0; round < 20; round++) {
            int id = d.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1));
            d.publish();
            assertEquals(id, q.popAvail());
            q.walk(id, chain);
            q.pushUsed(id, 1);
            q.publishUsed();
            assertEquals(id, d.reapUsed());
        }
        assertEquals(-1, q.popAvail());
    }

    @Test
    void vringBaseCarriesBothPositionsAndWrapCounters() throws Exception {
        // QEMU's encoding: avail | avail_wrap << 15 | (used | used_wrap << 15) << 16.
        driver.setPositions(5, false, 3, true);
        PackedVirtqueue q = queue();
        assertEquals(5, q.nextAvail());
        assertFalse(q.availWrap());
        assertEquals(3, q.nextUsed());
        assertTrue(q.usedWrap());
        assertEquals(5 | (3 | WRAP) << 16, q.vringBase());
        // A front-end that sends only the avail half: used = avail.
        PackedVirtqueue q16 = new PackedVirtqueue(ram.memory(), SIZE, GuestRam.userAddr(driver.descGpa()),
                GuestRam.userAddr(driver.driverEventGpa()), GuestRam.userAddr(driver.deviceEventGpa()), 2 | WRAP, false, false);
        assertEquals(2, q16.nextUsed());
        assertTrue(q16.usedWrap());
    }

    // ---- avail side ----

    @Test
    void popsOnlyAfterTheHeadFlagsArePublished() throws Exception {
        PackedVirtqueue q = queue();
        assertEquals(-1, q.popAvail());
        assertFalse(q.hasAvail());
        int id = driver.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 512), Buf.writable(data + 1024, 1));
        assertFalse(q.hasAvail(), "written but not made available");
        assertEquals(-1, q.popAvail());
        driver.publish();
        assertTrue(q.hasAvail());
        assertEquals(id, q.popAvail());
        assertEquals(3, q.nextAvail());
        q.walk(id, chain);
        assertEquals(3, chain.segmentCount());
        assertEquals(1, chain.readableCount());
        assertEquals(16, chain.readableBytes());
        assertEquals(513, chain.writableBytes());
        assertEquals(-1, q.popAvail());
    }

    @Test
    void smallQueueWrapsManyTimesInOrder() throws Exception {
        PackedRingDriver d = new PackedRingDriver(ram, 2);
        PackedVirtqueue q = d.deviceQueue(true, true);
        boolean[] seenWrap = new boolean[2];
        for (int round = 0; round < 1000; round++) {
            int id = round % 3 == 0
                    ? d.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1))
                    : d.addIndirectChain(Buf.readable(data, 16), Buf.writable(data + 16, 9));
            // Written but not yet published is neither available to the device nor used to the driver.
            assertFalse(q.hasAvail(), "round " + round);
            assertEquals(-1, d.reapUsed(), "round " + round);
            d.publish();
            seenWrap[q.availWrap() ? 1 : 0] = true;
            assertEquals(id, q.popAvail(), "round " + round);
            q.walk(id, chain);
            assertEquals(round % 3 == 0 ? 17 : 25, chain.readableBytes() + chain.writableBytes());
            q.pushUsed(id, round);
            q.publishUsed();
            assertEquals(id, d.reapUsed(), "round " + round);
            assertEquals(round, d.lastUsedLength());
            assertEquals(-1, d.reapUsed());
        }
        assertTrue(seenWrap[0] && seenWrap[1], "both wrap counter values were used");
        assertEquals(d.vringBase(), q.vringBase());
    }

    @Test
    void chainsCrossTheRingEndAndTheWrapBoundaryOfAPosition() throws Exception {
        // Start one slot before the end: the chain's later descriptors carry the flipped wrap.
        driver.setPositions(SIZE - 1, true, SIZE - 1, true);
        PackedVirtqueue q = queue();
        int id = driver.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 100), Buf.writable(data + 200, 1));
        driver.publish();
        assertEquals(id, q.popAvail());
        assertEquals(2, q.nextAvail());
        assertFalse(q.availWrap());
        q.walk(id, chain);
        assertEquals(117, chain.readableBytes() + chain.writableBytes());
        q.pushUsed(id, 101);
        q.publishUsed();
        assertEquals(2, q.nextUsed());
        assertFalse(q.usedWrap());
        assertEquals(id, driver.reapUsed());
        assertEquals(101, driver.lastUsedLength());
        assertEquals(2, driver.usedPosition());
    }

    @Test
    void restartsFromAVringBaseAtTheLargestPosition() throws Exception {
        // The largest queue: positions up to 32767, wrap in bit 15 of each half.
        PackedRingDriver d = new PackedRingDriver(ram, PackedVirtqueue.MAX_SIZE);
        d.setPositions(PackedVirtqueue.MAX_SIZE - 1, false, PackedVirtqueue.MAX_SIZE - 1, false);
        DescriptorChain big = new DescriptorChain(DescriptorChain.capacityFor(PackedVirtqueue.MAX_SIZE));
        PackedVirtqueue q = d.deviceQueue(true, false);
        assertEquals(0x7fff | 0x7fff << 16, q.vringBase());
        for (int i = 0; i < 3; i++) {
            int id = d.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1));
            d.publish();
            assertEquals(id, q.popAvail());
            q.walk(id, big);
            q.pushUsed(id, 1);
            q.publishUsed();
            assertEquals(id, d.reapUsed());
            // Restart mid-stream from what GET_VRING_BASE would report.
            q = new PackedVirtqueue(ram.memory(), PackedVirtqueue.MAX_SIZE, GuestRam.userAddr(d.descGpa()),
                    GuestRam.userAddr(d.driverEventGpa()), GuestRam.userAddr(d.deviceEventGpa()), q.vringBase(), true, false);
        }
        assertEquals(5 | WRAP, q.vringBase() & 0xffff, "position 32767 + 3 chains of 2 descriptors wrapped once");
        assertEquals(d.vringBase(), q.vringBase());
    }

    @Test
    void outOfOrderCompletionAdvancesUsedByEachChainsLength() throws Exception {
        PackedVirtqueue q = queue();
        int a = driver.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1));            // 2 slots
        int b = driver.addChain(Buf.readable(data, 16), Buf.readable(data + 32, 8), Buf.writable(data + 48, 1)); // 3
        int c = driver.addIndirectChain(Buf.readable(data, 16), Buf.writable(data + 64, 1));    // 1
        driver.publish();
        assertEquals(a, q.popAvail());
        q.walk(a, chain);
        assertEquals(b, q.popAvail());
        q.walk(b, chain);
        assertEquals(c, q.popAvail());
        q.walk(c, chain);
        // Answer c, then a, then b.
        q.pushUsed(c, 3);
        q.publishUsed();
        assertEquals(1, q.nextUsed());
        assertEquals(c, driver.reapUsed());
        assertEquals(3, driver.lastUsedLength());
        q.pushUsed(a, 1);
        q.pushUsed(b, 2);
        assertTrue(q.awaitingPublish(a) && q.awaitingPublish(b));
        assertEquals(-1, driver.reapUsed(), "not visible before publish");
        q.publishUsed();
        assertFalse(q.awaitingPublish(a));
        assertEquals(a, driver.reapUsed());
        assertEquals(b, driver.reapUsed());
        assertEquals(2, driver.lastUsedLength());
        assertEquals(6, q.nextUsed());
        assertEquals(SIZE, driver.freeSlots());
        // The ids are free again and reusable.
        int again = driver.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1));
        driver.publish();
        assertEquals(again, q.popAvail());
    }

    @Test
    void randomOutOfOrderTrafficStaysInStepWithTheDriver() throws Exception {
        SplittableRandom random = new SplittableRandom(13);
        PackedRingDriver d = new PackedRingDriver(ram, 5);
        PackedVirtqueue q = d.deviceQueue(true, true);
        ArrayDeque<Integer> inFlight = new ArrayDeque<>();
        int completed = 0;
        for (int step = 0; step < 20_000; step++) {
            if (random.nextBoolean()) {
                int id = switch (random.nextInt(3)) {
                    case 0 -> d.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1));
                    case 1 -> d.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 4), Buf.writable(data + 32, 1));
                    default -> d.addIndirectChain(Buf.readable(data, 16), Buf.writable(data + 32, 1));
                };
                if (id >= 0) {
                    d.publish();
                    assertEquals(id, q.popAvail());
                    q.walk(id, chain);
                    inFlight.add(id);
                }
            } else if (!inFlight.isEmpty()) {
                int id = random.nextBoolean() ? inFlight.pollFirst() : inFlight.pollLast();
                q.pushUsed(id, id);
                if (random.nextInt(3) == 0 || inFlight.isEmpty()) {
                    q.publishUsed();
                    int got;
                    while ((got = d.reapUsed()) >= 0) {
                        assertEquals(got, d.lastUsedLength());
                        completed++;
                    }
                }
            }
        }
        assertTrue(completed > 1000, "completed " + completed);
    }

    // ---- hostile input ----

    @Test
    void idBeyondSizeOrReusedWhileInFlightBreaksTheQueue() throws Exception {
        PackedVirtqueue q = queue();
        driver.offerRaw(SIZE, false, new long[] {data}, new int[] {16}, new int[] {0});
        driver.publish();
        brokenBy(q, "beyond queue size");

        PackedRingDriver d = new PackedRingDriver(ram, SIZE);
        PackedVirtqueue q2 = d.deviceQueue(false, false);
        d.offerRaw(3, false, new long[] {data}, new int[] {16}, new int[] {0});
        d.offerRaw(3, false, new long[] {data}, new int[] {16}, new int[] {0});
        d.publish();
        assertEquals(3, q2.popAvail());
        brokenBy(q2, "still in flight");
        // Answered but not yet published counts as in flight too.
        q2.walk(3, chain);
        q2.pushUsed(3, 0);
        brokenBy(q2, "still in flight");
        q2.publishUsed();
        assertEquals(3, q2.popAvail());
    }

    @Test
    void aChainLongerThanTheRingBreaksTheQueue() throws Exception {
        PackedVirtqueue q = queue();
        long[] addrs = new long[SIZE];
        int[] lens = new int[SIZE];
        int[] flags = new int[SIZE];
        java.util.Arrays.fill(addrs, data);
        java.util.Arrays.fill(lens, 16);
        java.util.Arrays.fill(flags, PackedVirtqueue.DESC_F_NEXT); // every one, the last too: no end
        driver.offerRaw(0, false, addrs, lens, flags);
        driver.publish();
        brokenBy(q, "longer than queue size");
    }

    @Test
    void usedDescriptorsAreNotMistakenForAvailableOnes() throws Exception {
        PackedVirtqueue q = queue();
        int id = driver.addChain(Buf.readable(data, 16));
        driver.publish();
        assertEquals(id, q.popAvail());
        q.walk(id, chain);
        q.pushUsed(id, 0);
        q.publishUsed();
        // The device's own used descriptor at its old avail position is not new work, nor are
        // descriptors with the wrong wrap bits.
        assertFalse(q.hasAvail());
        driver.writeDescriptor(1, data, 16, 2, PackedVirtqueue.DESC_F_AVAIL | PackedVirtqueue.DESC_F_USED);
        assertFalse(q.hasAvail());
        driver.writeDescriptor(1, data, 16, 2, 0);
        assertFalse(q.hasAvail());
        driver.writeDescriptor(1, data, 16, 2, PackedVirtqueue.DESC_F_USED); // available under wrap 0 only
        assertFalse(q.hasAvail());
        driver.writeDescriptor(1, data, 16, 2, PackedVirtqueue.DESC_F_AVAIL);
        assertTrue(q.hasAvail());
        assertEquals(2, q.popAvail());
    }

    @Test
    void anIndirectDescriptorInsideAChainIsRejected() throws Exception {
        // The indirect rules both rings share are in VirtqueueContractTest; this one is the packed ring's own.
        PackedVirtqueue q = driver.deviceQueue(false, true);
        long table = ram.alloc(32, 16);
        driver.writeTableDescriptor(table, 0, data, 16, 0);
        driver.writeTableDescriptor(table, 1, data + 16, 1, DESC_F_WRITE);
        driver.offerRaw(4, true, new long[] {table, data}, new int[] {32, 1}, new int[] {DESC_F_INDIRECT, DESC_F_WRITE});
        driver.publish();
        assertEquals(4, q.popAvail());
        rejected(q, 4, "INDIRECT descriptor inside a chain");
    }

    @Test
    void aChainRewrittenAfterItWasMadeAvailableIsRejected() throws Exception {
        PackedVirtqueue q = queue();
        int id = driver.addChain(Buf.readable(data, 16), Buf.writable(data + 16, 1));
        driver.publish();
        assertEquals(id, q.popAvail());
        // The guest drops NEXT from the head after the device counted the chain.
        driver.writeDescriptor(0, data, 16, id, PackedRingDriver.availableBits(true));
        rejected(q, id, "changed after it was made available");
    }

    @Test
    void walkRefusesIdsNotInFlightAndPushRefusesDoubleCompletion() throws Exception {
        PackedVirtqueue q = queue();
        rejected(q, 0, "not a request in flight");
        rejected(q, SIZE, "not a request in flight");
        int id = driver.addChain(Buf.readable(data, 16));
        driver.publish();
        assertEquals(id, q.popAvail());
        q.walk(id, chain);
        q.pushUsed(id, 0);
        assertThrows(IllegalStateException.class, () -> q.pushUsed(id, 0));
        q.publishUsed();
        assertThrows(IllegalStateException.class, () -> q.pushUsed(id, 0));
        assertThrows(IllegalArgumentException.class, () -> q.pushUsed(SIZE, 0));
    }

    // ---- notifications ----

    @Test
    void driverEventFlagsDecideInterrupts() throws Exception {
        PackedVirtqueue q = queue();
        int[] ids = new int[4];
        for (int i = 0; i < 4; i++) {
            ids[i] = driver.addChain(Buf.readable(data, 16));
        }
        driver.publish();
        for (int id : ids) {
            assertEquals(id, q.popAvail());
            q.walk(id, chain);
        }
        driver.setDriverEvent(EVENT_FLAG_DISABLE, 0);
        q.pushUsed(ids[0], 0);
        assertTrue(q.driverAwaitsUsed(), "before the first publish the driver's state is unknown: it may wait");
        assertTrue(q.publishUsed(), "the first publish after a start always signals");
        q.pushUsed(ids[1], 0);
        assertFalse(q.driverAwaitsUsed(), "a driver that disabled notifications does not wait for them");
        assertFalse(q.publishUsed(), "DISABLE");
        driver.setDriverEvent(EVENT_FLAG_ENABLE, 0);
        q.pushUsed(ids[2], 0);
        assertTrue(q.driverAwaitsUsed());
        assertTrue(q.publishUsed(), "ENABLE");
        assertFalse(q.publishUsed(), "nothing new");
        // DESC without EVENT_IDX negotiated is not a valid mode: signal.
        driver.setDriverEvent(EVENT_FLAG_DESC, 0);
        q.pushUsed(ids[3], 0);
        assertTrue(q.publishUsed());
    }

    @Test
    void eventIdxSignalsOnlyWhenTheNamedDescriptorIsWritten() throws Exception {
        PackedVirtqueue q = driver.deviceQueue(true, false);
        int[] ids = new int[SIZE];
        for (int i = 0; i < SIZE; i++) {
            ids[i] = driver.addChain(Buf.readable(data, 16));
        }
        driver.publish();
        for (int id : ids) {
            assertEquals(id, q.popAvail());
            q.walk(id, chain);
        }
        q.pushUsed(ids[0], 0);
        assertTrue(q.publishUsed(), "first publish");
        // Notify when the used descriptor at position 3 (wrap 1) is written.
        driver.setDriverEvent(EVENT_FLAG_DESC, 3 | WRAP);
        q.pushUsed(ids[1], 0);
        assertFalse(q.driverAwaitsUsed(), "position 1 is not the one it waits for");
        assertFalse(q.publishUsed(), "wrote position 1");
        q.pushUsed(ids[2], 0);
        assertFalse(q.publishUsed(), "wrote position 2");
        q.pushUsed(ids[3], 0);
        assertTrue(q.driverAwaitsUsed(), "position 3 is");
        q.pushUsed(ids[4], 0);
        assertTrue(q.publishUsed(), "wrote positions 3 and 4");
        // Across the wrap: ask for position 1 of the next lap (wrap 0).
        driver.setDriverEvent(EVENT_FLAG_DESC, 1);
        q.pushUsed(ids[5], 0);
        q.pushUsed(ids[6], 0);
        q.pushUsed(ids[7], 0);
        assertFalse(q.publishUsed(), "wrote 5..7 of lap 1");
        for (int i = 0; i < SIZE; i++) {
            assertEquals(ids[i], driver.reapUsed());
        }
        int a = driver.addChain(Buf.readable(data, 16));
        int b = driver.addChain(Buf.readable(data, 16));
        driver.publish();
        assertEquals(a, q.popAvail());
        q.walk(a, chain);
        assertEquals(b, q.popAvail());
        q.walk(b, chain);
        q.pushUsed(a, 0);
        assertFalse(q.publishUsed(), "wrote position 0 of lap 2");
        q.pushUsed(b, 0);
        assertTrue(q.publishUsed(), "wrote position 1 of lap 2");
    }

    @Test
    void needEventIsVringNeedEventOnLinearPositions() {
        // Old 6 (wrap 1) to now 2 (wrap 0) on a ring of 8 wrote positions 6, 7, 0, 1.
        assertTrue(PackedVirtqueue.needEvent(8, 6 | WRAP, 2, 6 | WRAP));
        assertTrue(PackedVirtqueue.needEvent(8, 1, 2, 6 | WRAP));
        assertFalse(PackedVirtqueue.needEvent(8, 2, 2, 6 | WRAP));
        assertFalse(PackedVirtqueue.needEvent(8, 5 | WRAP, 2, 6 | WRAP));
        assertFalse(PackedVirtqueue.needEvent(8, 1 | WRAP, 2, 6 | WRAP), "position 1 of an earlier lap");
    }

    @Test
    void kickSuppressionWithAndWithoutEventIdx() throws Exception {
        PackedVirtqueue plain = queue();
        plain.setKicksEnabled(false);
        driver.addChain(Buf.readable(data, 16));
        driver.publish();
        assertFalse(driver.kickNeeded());
        plain.setKicksEnabled(true);
        driver.addChain(Buf.readable(data, 16));
        driver.publish();
        assertTrue(driver.kickNeeded());

        PackedRingDriver d = new PackedRingDriver(ram, SIZE);
        PackedVirtqueue q = d.deviceQueue(true, false);
        q.setKicksEnabled(true);
        assertEquals(EVENT_FLAG_DESC << 16 | WRAP, d.deviceEvent(), "kick me at position 0, wrap 1");
        int id = d.addChain(Buf.readable(data, 16), Buf.readable(data, 16));
        d.publish();
        assertTrue(d.kickNeeded(), "the chain covers position 0");
        assertEquals(id, q.popAvail());
        q.setKicksEnabled(false);
        d.addChain(Buf.readable(data, 16));
        d.publish();
        assertFalse(d.kickNeeded());
        q.setKicksEnabled(true); // at position 2 while the driver already added position 2
        assertEquals(EVENT_FLAG_DESC << 16 | 2 | WRAP, d.deviceEvent());
        assertTrue(q.hasAvail(), "the re-check after enabling finds it");
    }

}
