package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The inflight region as a restarted back-end sees it: the region and the guest's rings outlive
 * the queue object (as they outlive a killed process), and a new queue on them must hand out
 * exactly the requests that never reached the used ring, in their original order.
 */
class InflightRegionTest {
    private static final int SIZE = 8;

    private GuestRam ram;
    private SplitRingDriver driver;
    private Arena arena;
    /** The front-end's shared memory for one queue's region. */
    private MemorySegment shared;
    private long buf;

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
        driver = new SplitRingDriver(ram, SIZE);
        arena = Arena.ofConfined();
        shared = arena.allocate(InflightRegion.queueBytes(SIZE), InflightRegion.ALIGNMENT);
        buf = ram.alloc(4096, 16);
    }

    @AfterEach
    void tearDown() {
        arena.close();
        ram.close();
    }

    /** A queue as a (re)started back-end builds it: base is what QEMU sends after a crash, its used index. */
    private SplitVirtqueue start(int base) throws VirtioException {
        return new SplitVirtqueue(ram.memory(), SIZE, GuestRam.userAddr(driver.descGpa()), GuestRam.userAddr(driver.availGpa()),
                GuestRam.userAddr(driver.usedGpa()), base, false, false, InflightRegion.of(shared, SIZE));
    }

    private int offer() {
        int head = driver.addChain(Buf.writable(buf, 1));
        assertTrue(head >= 0);
        return head;
    }

    private static List<Integer> drain(SplitVirtqueue q) throws VirtioException {
        List<Integer> heads = new ArrayList<>();
        int h;
        while ((h = q.popAvail()) >= 0) {
            heads.add(h);
        }
        return heads;
    }

    @Test
    void sizeIsHeaderPlusOneEntryPerDescriptorIn64ByteUnits() {
        assertEquals(64, InflightRegion.queueBytes(1));
        assertEquals(16 + 16 * 128 + 48, InflightRegion.queueBytes(128));
        assertThrows(IllegalArgumentException.class, () -> InflightRegion.of(shared.asSlice(0, 64), SIZE));
    }

    @Test
    void aFreshRegionIsInitialisedAndTheFrontEndsBaseIsUsed() throws Exception {
        driver.setAvailIdx(5);
        driver.setUsedIdx(5);
        SplitVirtqueue q = start(5);
        assertEquals(InflightRegion.VERSION, q.inflight().version());
        assertEquals(5, q.nextAvail());
        assertEquals(5, q.inflight().usedIdx());
    }

    @Test
    void requestsInFlightAtACrashAreResubmittedInFetchOrderAndCompletedOnesAreNot() throws Exception {
        SplitVirtqueue first = start(0);
        List<Integer> offered = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            offered.add(offer());
        }
        driver.publish();
        List<Integer> fetched = drain(first);
        assertEquals(offered, fetched);
        // Completed out of order: the 2nd and the 4th; the rest are in the driver when it dies.
        first.pushUsed(fetched.get(3), 1);
        first.pushUsed(fetched.get(1), 1);
        first.publishUsed();
        assertEquals(2, driver.usedIdx());

        // The front-end restarts the back-end with base = used index (it could not ask for the avail index).
        SplitVirtqueue second = start(driver.usedIdx());
        assertEquals(5, second.nextAvail(), "used index + requests in flight");
        assertTrue(second.hasAvail());
        assertEquals(List.of(fetched.get(0), fetched.get(2), fetched.get(4)), drain(second));
        // New requests follow the resubmitted ones, and the resubmitted ones complete normally.
        int next = offer();
        driver.publish();
        assertEquals(List.of(next), drain(second));
        for (int h : new int[]{fetched.get(4), fetched.get(0), next, fetched.get(2)}) {
            second.pushUsed(h, 1);
        }
        second.publishUsed();
        assertEquals(6, driver.usedIdx());
        for (int h = 0; h < SIZE; h++) {
            assertFalse(second.inflight().isInflight(h), "head " + h);
        }
        // A third start finds nothing to redo.
        assertEquals(List.of(), drain(start(driver.usedIdx())));
    }

    @Test
    void resubmittedRequestsKeepTheirOrderAcrossASecondCrash() throws Exception {
        SplitVirtqueue first = start(0);
        for (int i = 0; i < 4; i++) {
            offer();
        }
        driver.publish();
        List<Integer> fetched = drain(first);
        SplitVirtqueue second = start(0);
        assertEquals(fetched.subList(0, 2), List.of(second.popAvail(), second.popAvail()));
        // Dies again after re-fetching two of the four: all four are still owed, oldest first.
        assertEquals(fetched, drain(start(0)));
    }

    @Test
    void doubleCompletionIsRefused() throws Exception {
        SplitVirtqueue q = start(0);
        int head = offer();
        int other = offer();
        driver.publish();
        assertEquals(head, q.popAvail());
        IllegalStateException never = assertThrows(IllegalStateException.class, () -> q.pushUsed(other, 1));
        assertTrue(never.getMessage().contains("head " + other), never.getMessage());
        q.pushUsed(head, 1);
        assertThrows(IllegalStateException.class, () -> q.pushUsed(head, 1), "twice in one batch");
        q.publishUsed();
        assertThrows(IllegalStateException.class, () -> q.pushUsed(head, 1), "again after publishing");
        assertEquals(1, driver.usedIdx(), "the refused completions never reached the ring");
    }

    /** Where the back-end dies in the completion sequence of a batch of two out of three requests. */
    private enum CrashPoint { FETCHED, USED_WRITTEN, BATCH_LISTED, USED_IDX_PUBLISHED, FLAGS_CLEARED, DONE }

    @Test
    void aCrashAtEachStepOfCompletionLosesNothingAndRepeatsNothing() throws Exception {
        for (CrashPoint crash : CrashPoint.values()) {
            // Fresh guest memory and region for each crash point.
            tearDown();
            setUp();
            {
                SplitVirtqueue q = start(0);
                for (int i = 0; i < 3; i++) {
                    offer();
                }
                driver.publish();
                List<Integer> fetched = drain(q);
                int a = fetched.get(2);
                int b = fetched.get(0);
                InflightRegion region = q.inflight();
                if (crash.compareTo(CrashPoint.USED_WRITTEN) >= 0) {
                    q.pushUsed(a, 1);
                    q.pushUsed(b, 1);
                }
                if (crash == CrashPoint.DONE) {
                    q.publishUsed();
                } else {
                    // publishUsed's steps one by one, stopping where the crash is.
                    if (crash.compareTo(CrashPoint.BATCH_LISTED) >= 0) {
                        region.beforePublish();
                    }
                    if (crash.compareTo(CrashPoint.USED_IDX_PUBLISHED) >= 0) {
                        driver.setUsedIdx(2);
                    }
                    if (crash.compareTo(CrashPoint.FLAGS_CLEARED) >= 0) {
                        region.afterPublish(2);
                        // and the region's used_idx store is lost: put the old value back.
                        if (crash == CrashPoint.FLAGS_CLEARED) {
                            shared.set(java.lang.foreign.ValueLayout.JAVA_SHORT, 14, (short) 0);
                        }
                    }
                }
                boolean published = crash.compareTo(CrashPoint.USED_IDX_PUBLISHED) >= 0;
                SplitVirtqueue restarted = start(driver.usedIdx());
                List<Integer> expected = published ? List.of(fetched.get(1)) : fetched;
                assertEquals(expected, drain(restarted), "crash after " + crash);
                assertEquals(3, restarted.nextAvail(), "crash after " + crash);
                assertEquals(driver.usedIdx(), restarted.inflight().usedIdx(), "crash after " + crash);
            }
        }
    }

    @Test
    void aRegionClaimingMoreCompletionsThanTheRingHoldsIsRefused() throws Exception {
        start(0);
        driver.setUsedIdx(SIZE + 1);
        VirtioException e = assertThrows(VirtioException.class, () -> start(0));
        assertTrue(e.getMessage().contains("ahead of the inflight region"), e.getMessage());
    }
}
