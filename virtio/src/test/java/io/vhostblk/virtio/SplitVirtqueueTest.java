package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;


import static io.vhostblk.virtio.SplitVirtqueue.DESC_F_INDIRECT;
import static io.vhostblk.virtio.SplitVirtqueue.DESC_F_NEXT;
import static io.vhostblk.virtio.SplitVirtqueue.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SplitVirtqueueTest {
    private static final long MB = 1 << 20;
    /** Region 0 [0, 1M) and region 1 [1M, 2M) are adjacent; region 2 [4G, 4G+1M) is behind a hole. */
    private static final long FAR = 0x1_0000_0000L;
    private static final int SIZE = 8;

    private GuestRam ram;
    private SplitRingDriver driver;
    private DescriptorChain chain;

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, MB), new GuestRam.Region(MB, MB), new GuestRam.Region(FAR, MB));
        driver = new SplitRingDriver(ram, SIZE);
        chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    private SplitVirtqueue queue() throws VirtioException {
        return driver.deviceQueue(false, true);
    }

    private DescriptorException rejected(SplitVirtqueue q, int head, String fragment) {
        DescriptorException e = assertThrows(DescriptorException.class, () -> q.walk(head, chain));
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
        return e;
    }

    // ---- construction ----

    @Test
    void rejectsBadSizesAlignmentAndPlacement() {
        long d = GuestRam.userAddr(driver.descGpa());
        long a = GuestRam.userAddr(driver.availGpa());
        long u = GuestRam.userAddr(driver.usedGpa());
        GuestMemory m = ram.memory();
        for (int bad : new int[]{0, 3, 12, -8, 65536}) {
            assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, bad, d, a, u, 0, false, false), "size " + bad);
        }
        assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, d + 8, a, u, 0, false, false));
        assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, d, a + 1, u, 0, false, false));
        assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, d, a, u + 2, 0, false, false));
        assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, d, a, u, 65536, false, false));
        assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, d, a, u, -1, false, false));
        // Rings given as guest-physical addresses (a classic front-end mix-up) are outside user space.
        assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, driver.descGpa(), a, u, 0, false, false));
        // A used ring ending past its region.
        long tail = GuestRam.userAddr(MB - 16);
        VirtioException e = assertThrows(VirtioException.class, () -> new SplitVirtqueue(m, SIZE, d, a, tail, 0, false, false));
        assertTrue(e.getMessage().contains("used ring"), e.getMessage());
    }

    @Test
    void reportsSizeAndStartsAtGivenBase() throws Exception {
        driver.setAvailIdx(100);
        SplitVirtqueue q = queue();
        assertEquals(SIZE, q.size());
        assertEquals(100, q.nextAvail());
    }

    @Test
    void readsUsedIndexFromGuestMemoryAtStart() throws Exception {
        driver.setUsedIdx(0x1234);
        SplitVirtqueue q = queue();
        assertEquals(0x1234, q.nextUsed());
        push(q, 0, 0);
        q.publishUsed();
        assertEquals(0x1235, driver.usedIdx());
    }

    // ---- avail ring ----

    @Test
    void popsHeadsInOrderOnlyAfterPublish() throws Exception {
        SplitVirtqueue q = queue();
        long buf = ram.alloc(64, 8);
        int h1 = driver.addChain(Buf.readable(buf, 16));
        int h2 = driver.addChain(Buf.writable(buf + 16, 16));
        assertEquals(-1, q.popAvail(), "offered but not published");
        assertFalse(q.hasAvail());
        driver.publish();
        assertTrue(q.hasAvail());
        assertEquals(h1, q.popAvail());
        assertEquals(h2, q.popAvail());
        assertEquals(-1, q.popAvail());
        assertEquals(2, q.nextAvail());
    }

    @Test
    void headBeyondQueueSizeBreaksTheQueue() throws Exception {
        SplitVirtqueue q = queue();
        driver.offer(SIZE);
        driver.publish();
        VirtioException e = assertThrows(VirtioException.class, q::popAvail);
        assertFalse(e instanceof DescriptorException, "a broken ring is not a per-request error");
        assertTrue(e.getMessage().contains("head 8"), e.getMessage());
    }

    @Test
    void availIndexRunningAheadBreaksTheQueue() throws Exception {
        SplitVirtqueue q = queue();
        driver.setAvailIdx(SIZE + 1);
        driver.publish();
        VirtioException e = assertThrows(VirtioException.class, q::popAvail);
        assertTrue(e.getMessage().contains("9 entries ahead"), e.getMessage());
        // Exactly size ahead is legal: a full ring.
        driver.setAvailIdx(SIZE);
        driver.publish();
        assertEquals(0, q.popAvail());
    }

    @Test
    void availIndexWrapsAt65535() throws Exception {
        driver.setAvailIdx(65534);
        driver.setUsedIdx(65534);
        SplitVirtqueue q = queue();
        long buf = ram.alloc(64, 8);
        int[] heads = new int[4];
        for (int i = 0; i < 4; i++) {
            heads[i] = driver.addChain(Buf.writable(buf + i, 1));
        }
        driver.publish();
        assertEquals(2, driver.availIdx());
        for (int i = 0; i < 4; i++) {
            int head = q.popAvail();
            assertEquals(heads[i], head);
            q.pushUsed(head, 1);
        }
        assertEquals(-1, q.popAvail());
        assertEquals(2, q.nextAvail());
        q.publishUsed();
        assertEquals(2, driver.usedIdx());
        for (int i = 0; i < 4; i++) {
            assertEquals(heads[i], driver.reapUsed());
        }
    }

    // ---- walking chains ----

    @Test
    void walksDirectMultiSegmentChain() throws Exception {
        SplitVirtqueue q = queue();
        long hdr = ram.alloc(16, 8);
        long data = ram.alloc(4096, 4096);
        long status = ram.alloc(1, 1);
        int head = driver.addChain(Buf.readable(hdr, 16), Buf.writable(data, 2048), Buf.writable(data + 2048, 2048),
                Buf.writable(status, 1));
        driver.publish();
        q.walk(q.popAvail(), chain);
        assertEquals(head, chain.head());
        assertEquals(4, chain.segmentCount());
        assertEquals(4, chain.descriptorCount());
        assertEquals(1, chain.readableCount());
        assertEquals(3, chain.writableCount());
        assertEquals(16, chain.readableBytes());
        assertEquals(4097, chain.writableBytes());
        assertEquals(ram.memory().translate(hdr, 16), chain.address(0));
        assertEquals(ram.memory().translate(data + 2048, 2048), chain.address(2));
        assertEquals(2048, chain.length(2));
        assertFalse(chain.writable(0));
        assertTrue(chain.writable(3));
        assertThrows(IndexOutOfBoundsException.class, () -> chain.address(4));
    }

    @Test
    void rejectedChainsGetIoErrWhereTheirStatusByteIsFound() throws Exception {
        SplitVirtqueue q = queue();
        long hdr = ram.alloc(16, 8);
        long status = ram.alloc(1, 1);
        // An indirect table longer than the queue (what Linux builds when seg_max exceeds the queue size).
        int entries = SIZE + 2;
        long table = ram.alloc(16L * entries, 16);
        driver.writeTableDescriptor(table, 0, hdr, 16, SplitVirtqueue.DESC_F_NEXT, 1);
        for (int i = 1; i < entries - 1; i++) {
            driver.writeTableDescriptor(table, i, ram.alloc(512, 512), 512, SplitVirtqueue.DESC_F_NEXT, i + 1);
        }
        driver.writeTableDescriptor(table, entries - 1, status, 1, SplitVirtqueue.DESC_F_WRITE, 0);
        int head = 5;
        driver.writeDescriptor(head, table, 16 * entries, SplitVirtqueue.DESC_F_INDIRECT, 0);
        driver.offer(head);
        driver.publish();
        assertEquals(head, q.popAvail());
        rejected(q, head, "indirect table length");
        ram.at(status, 1).set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) 0x55);
        assertEquals(1, q.answerRejected(head, (byte) 1));
        assertEquals(1, ram.at(status, 1).get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));

        // A chain whose last descriptor is readable has no status byte to write: nothing is touched.
        long far = FAR + 2 * MB;
        int bad = driver.addChain(Buf.readable(hdr, 16), Buf.readable(far, 512));
        driver.publish();
        assertEquals(bad, q.popAvail());
        rejected(q, bad, "not inside guest memory");
        assertEquals(0, q.answerRejected(bad, (byte) 1));
    }

    @Test
    void aHeadAnsweredButNotPublishedIsAwaitingPublish() throws Exception {
        // A hostile guest that offers a head again before its used index is published offers one
        // buffer twice: the queue loop asks this before serving a head (it marks the queue broken).
        SplitVirtqueue q = queue();
        long hdr = ram.alloc(16, 8);
        long status = ram.alloc(1, 1);
        int head = driver.addChain(Buf.readable(hdr, 16), Buf.writable(status, 1));
        driver.publish();
        assertEquals(head, q.popAvail());
        assertFalse(q.awaitingPublish(head), "popped, not answered");
        q.pushUsed(head, 1);
        assertTrue(q.awaitingPublish(head), "answered, used index not published");
        q.publishUsed();
        assertFalse(q.awaitingPublish(head), "published");
    }

    @Test
    void walksIndirectChain() throws Exception {
        SplitVirtqueue q = queue();
        long hdr = ram.alloc(16, 8);
        long data = ram.alloc(8192, 4096);
        long status = ram.alloc(1, 1);
        int head = driver.addIndirectChain(Buf.readable(hdr, 16), Buf.readable(data, 4096),
                Buf.readable(data + 4096, 4096), Buf.writable(status, 1));
        driver.publish();
        q.walk(q.popAvail(), chain);
        assertEquals(head, chain.head());
        assertEquals(4, chain.descriptorCount(), "the pointer to the table is not counted");
        assertEquals(3, chain.readableCount());
        assertEquals(16 + 8192, chain.readableBytes());
        assertEquals(1, chain.writableBytes());
        assertEquals(ram.memory().translate(status, 1), chain.address(3));
    }

    @Test
    void walksDirectDescriptorsFollowedByIndirectTable() throws Exception {
        SplitVirtqueue q = queue();
        long hdr = ram.alloc(16, 8);
        long table = ram.alloc(32, 16);
        long status = ram.alloc(1, 1);
        driver.writeTableDescriptor(table, 0, hdr + 8, 8, DESC_F_NEXT, 1);
        driver.writeTableDescriptor(table, 1, status, 1, DESC_F_WRITE, 0);
        driver.writeDescriptor(2, hdr, 8, DESC_F_NEXT, 5);
        driver.writeDescriptor(5, table, 32, DESC_F_INDIRECT, 0);
        driver.offer(2);
        driver.publish();
        q.walk(q.popAvail(), chain);
        assertEquals(3, chain.segmentCount());
        assertEquals(16, chain.readableBytes());
    }

    @Test
    void rejectsSplitRingIndirectLinking() throws Exception {
        // The rules both rings share are in VirtqueueContractTest; these are the split ring's own.
        SplitVirtqueue q = queue();
        long table = ram.alloc(16L * SIZE * 2, 16);
        long b = ram.alloc(16, 8);
        driver.writeTableDescriptor(table, 0, b, 16, DESC_F_WRITE, 0);
        driver.writeDescriptor(0, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
        rejected(q, 0, "INDIRECT together with NEXT");
        // next beyond the table (but inside the queue size).
        driver.writeTableDescriptor(table, 0, b, 16, DESC_F_NEXT, 2);
        driver.writeTableDescriptor(table, 1, b, 16, 0, 0);
        driver.writeDescriptor(0, table, 32, DESC_F_INDIRECT, 0);
        rejected(q, 0, "next index 2 is beyond indirect table size 2");
        // A loop inside the table.
        driver.writeTableDescriptor(table, 0, b, 16, DESC_F_NEXT, 1);
        driver.writeTableDescriptor(table, 1, b, 16, DESC_F_NEXT, 0);
        rejected(q, 0, "chain longer than queue size 8");
    }

    @Test
    void rejectsNextBeyondQueueSize() throws Exception {
        SplitVirtqueue q = queue();
        long b = ram.alloc(16, 8);
        driver.writeDescriptor(0, b, 16, DESC_F_NEXT, SIZE);
        rejected(q, 0, "next index 8 is beyond queue size 8");
        rejected(q, SIZE, "head 8 is beyond queue size 8");
    }

    @Test
    void rejectsLoopsAndOverlongChains() throws Exception {
        SplitVirtqueue q = queue();
        long b = ram.alloc(16, 8);
        driver.writeDescriptor(0, b, 16, DESC_F_NEXT, 1);
        driver.writeDescriptor(1, b, 16, DESC_F_NEXT, 0);
        rejected(q, 0, "chain longer than queue size");
        driver.writeDescriptor(3, b, 16, DESC_F_NEXT, 3); // self loop
        rejected(q, 3, "chain longer than queue size");
        // Exactly size descriptors is fine.
        for (int i = 0; i < SIZE; i++) {
            driver.writeDescriptor(i, b, 1, i + 1 < SIZE ? DESC_F_NEXT : 0, i + 1);
        }
        q.walk(0, chain);
        assertEquals(SIZE, chain.descriptorCount());
    }

    @Test
    void zeroLengthDescriptorsCountButAddNoSegment() throws Exception {
        SplitVirtqueue q = queue();
        long b = ram.alloc(16, 8);
        driver.writeDescriptor(0, b, 16, DESC_F_NEXT, 1);
        driver.writeDescriptor(1, 0xdead_0000_0000L, 0, DESC_F_NEXT | DESC_F_WRITE, 2); // address never touched
        driver.writeDescriptor(2, b, 1, DESC_F_WRITE, 0);
        q.walk(0, chain);
        assertEquals(2, chain.segmentCount());
        assertEquals(3, chain.descriptorCount());
    }

    @Test
    void rejectsTotalLengthBeyond32Bits() throws Exception {
        // 2 x 3 GiB descriptors over a sparse memfd region: fits in memory, not in a u32 total.
        try (GuestRam big = GuestRam.memfd(0, new GuestRam.Region(0, 7L << 30))) {
            SplitRingDriver d = new SplitRingDriver(big, SIZE);
            SplitVirtqueue q = d.deviceQueue(false, false);
            long at = 64L << 20;
            d.writeDescriptor(0, at, (int) (3L << 30), DESC_F_NEXT, 1);
            d.writeDescriptor(1, at + (3L << 30), (int) (3L << 30), 0, 0);
            DescriptorException e = assertThrows(DescriptorException.class, () -> q.walk(0, chain));
            assertTrue(e.getMessage().contains("total chain length exceeds 2^32-1"), e.getMessage());
            // One 3 GiB descriptor is accepted and cut into 1 GiB segments (length() stays positive).
            d.writeDescriptor(1, at, (int) (3L << 30), 0, 0);
            q.walk(1, chain);
            assertEquals(3, chain.segmentCount());
            assertEquals(1 << 30, chain.length(2));
            assertEquals(3L << 30, chain.readableBytes());
        }
    }

    @Test
    void rereadsNothingTheGuestCanChangeMidWalk() throws Exception {
        // The chain is reused: a second walk fully replaces the first.
        SplitVirtqueue q = queue();
        long b = ram.alloc(64, 8);
        driver.writeDescriptor(0, b, 16, DESC_F_NEXT, 1);
        driver.writeDescriptor(1, b + 16, 16, DESC_F_WRITE, 0);
        driver.writeDescriptor(2, b + 32, 8, DESC_F_WRITE, 0);
        q.walk(0, chain);
        q.walk(2, chain);
        assertEquals(1, chain.segmentCount());
        assertEquals(0, chain.readableBytes());
        assertEquals(8, chain.writableBytes());
    }

    // ---- used ring and notifications ----

    /** Completes head as the device does: it must have been handed out (flagged in flight) first. */
    private static void push(SplitVirtqueue q, int head, int len) {
        q.inflight().markInflight(head);
        q.pushUsed(head, len);
    }

    @Test
    void publishesUsedElementsWithRelease() throws Exception {
        SplitVirtqueue q = queue();
        push(q, 3, 513);
        push(q, 5, 1);
        assertEquals(0, driver.usedIdx(), "not visible before publish");
        assertTrue(q.publishUsed(), "first publish always signals");
        assertEquals(2, driver.usedIdx());
        assertEquals(3, driver.usedId(0));
        assertEquals(513, driver.usedLen(0));
        assertEquals(5, driver.usedId(1));
        assertFalse(q.publishUsed(), "nothing new: no signal");
        assertThrows(IllegalArgumentException.class, () -> q.pushUsed(SIZE, 0));
    }

    @Test
    void honoursNoInterruptWithoutEventIdx() throws Exception {
        SplitVirtqueue q = queue();
        push(q, 0, 0);
        q.publishUsed();
        driver.setAvailFlags(1);
        push(q, 1, 0);
        assertFalse(q.driverAwaitsUsed(), "a driver that turned interrupts off does not wait for them");
        assertFalse(q.publishUsed());
        driver.setAvailFlags(0);
        push(q, 2, 0);
        assertTrue(q.driverAwaitsUsed());
        assertTrue(q.publishUsed());
    }

    @Test
    void eventIdxSignalsOnlyWhenUsedEventIsCrossed() throws Exception {
        SplitVirtqueue q = driver.deviceQueue(true, true);
        push(q, 0, 0);
        assertTrue(q.driverAwaitsUsed(), "before the first publish the driver's state is unknown: it may wait");
        assertTrue(q.publishUsed()); // first one: unconditional
        driver.setAvailFlags(1); // ignored with EVENT_IDX
        driver.setUsedEvent(3); // wake me when used.idx passes 3, i.e. becomes 4
        push(q, 1, 0);
        assertFalse(q.driverAwaitsUsed(), "publishing 2 would not reach the driver's event");
        assertFalse(q.publishUsed(), "1 -> 2 does not cross 3");
        push(q, 2, 0);
        assertFalse(q.driverAwaitsUsed());
        push(q, 3, 0);
        assertTrue(q.driverAwaitsUsed(), "publishing 4 would cross 3: the driver waits for it");
        assertTrue(q.publishUsed(), "2 -> 4 crosses 3 within the batch");
        push(q, 4, 0);
        assertFalse(q.driverAwaitsUsed(), "it was woken for 3 and has not asked again");
        assertFalse(q.publishUsed(), "already signalled for 3");
        driver.setUsedEvent(5); // it woke, saw up to 5, and sleeps until the next one
        push(q, 5, 0);
        assertTrue(q.driverAwaitsUsed(), "the next element is the one it waits for");
    }

    @Test
    void eventIdxAcrossIndexWrap() throws Exception {
        driver.setUsedIdx(65534);
        SplitVirtqueue q = driver.deviceQueue(true, true);
        push(q, 0, 0);
        q.publishUsed(); // 65535, the unconditional first signal
        driver.setUsedEvent(0); // wants an interrupt when used.idx goes 0 -> 1
        push(q, 1, 0);
        assertFalse(q.driverAwaitsUsed(), "65535 -> 0 would not pass event 0");
        assertFalse(q.publishUsed(), "65535 -> 0 does not pass event 0");
        push(q, 2, 0);
        assertTrue(q.driverAwaitsUsed(), "0 -> 1 would pass event 0");
        assertTrue(q.publishUsed(), "0 -> 1 passes event 0");
    }

    @Test
    void needEventMatchesTheSpecFormula() {
        assertTrue(SplitVirtqueue.needEvent(5, 6, 5));
        assertFalse(SplitVirtqueue.needEvent(6, 6, 5));
        assertTrue(SplitVirtqueue.needEvent(5, 10, 0));
        assertFalse(SplitVirtqueue.needEvent(10, 10, 0));
        assertTrue(SplitVirtqueue.needEvent(65535, 1, 65530));
        assertFalse(SplitVirtqueue.needEvent(3, 3, 3));
    }

    @Test
    void kickSuppressionWithoutEventIdx() throws Exception {
        SplitVirtqueue q = queue();
        q.setKicksEnabled(false);
        assertEquals(SplitVirtqueue.USED_F_NO_NOTIFY, driver.usedFlags());
        assertFalse(driver.kickNeeded(false));
        q.setKicksEnabled(true);
        assertEquals(0, driver.usedFlags());
        assertTrue(driver.kickNeeded(false));
    }

    @Test
    void kickSuppressionWithEventIdx() throws Exception {
        SplitVirtqueue q = driver.deviceQueue(true, true);
        long b = ram.alloc(64, 8);
        q.setKicksEnabled(true);
        assertEquals(0, driver.availEvent());
        driver.addChain(Buf.writable(b, 1));
        driver.publish();
        assertTrue(driver.kickNeeded(true), "0 -> 1 crosses avail_event 0");
        driver.addChain(Buf.writable(b, 1));
        driver.publish();
        assertFalse(driver.kickNeeded(true), "device has not re-armed");
        assertEquals(0, q.popAvail());
        assertEquals(1, q.popAvail());
        q.setKicksEnabled(false); // leaves avail_event behind
        assertEquals(0, driver.availEvent());
        q.setKicksEnabled(true);
        assertEquals(2, driver.availEvent());
        assertEquals(0, driver.usedFlags(), "flags untouched with EVENT_IDX");
        driver.addChain(Buf.writable(b, 1));
        driver.publish();
        assertTrue(driver.kickNeeded(true));
    }

}
