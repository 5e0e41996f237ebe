package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The dirty bitmap: every guest byte the device side writes must have its page's bit set. */
class DirtyLogTest {
    private static final long RAM = 1 << 20;
    private static final int PAGE = DirtyLog.PAGE_SIZE;

    private GuestRam ram;
    private Arena arena;
    private DirtyLog log;

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, RAM));
        arena = Arena.ofConfined();
        log = new DirtyLog(arena.allocate(RAM / PAGE / 8, 8));
    }

    @AfterEach
    void tearDown() {
        arena.close();
        ram.close();
    }

    @Test
    void marksEveryPageARangeTouchesAndNoOther() {
        log.mark(PAGE - 1, 2);
        assertTrue(log.isDirty(0));
        assertTrue(log.isDirty(PAGE));
        assertFalse(log.isDirty(2 * PAGE));
        log.mark(70 * PAGE + 5, 1);
        assertTrue(log.isDirty(70 * PAGE));
        assertFalse(log.isDirty(69 * PAGE));
        assertFalse(log.isDirty(71 * PAGE));
        log.mark(RAM - 1, 1);
        assertTrue(log.isDirty(RAM - PAGE));
        assertEquals(0, log.outOfRange());
        log.mark(RAM, 1);
        assertEquals(1, log.outOfRange(), "a page beyond the bitmap is counted, not written");
    }

    @Test
    void everyByteTheDeviceWritesHasItsPageMarked() throws Exception {
        SplitRingDriver driver = new SplitRingDriver(ram, 8);
        long header = ram.alloc(16, PAGE);
        long data = ram.alloc(3 * PAGE, PAGE) + 100; // straddles four pages
        long status = ram.alloc(PAGE, PAGE) + PAGE - 1;
        long untouched = ram.alloc(PAGE, PAGE);
        SplitVirtqueue q = driver.deviceQueue(true, true);
        q.logWritesTo(log, driver.usedGpa());
        int head = driver.addChain(Buf.readable(header, 16), Buf.writable(data, 2 * PAGE + 7), Buf.writable(status, 1));
        driver.publish();
        byte[] before = ram.at(0, RAM).toArray(ValueLayout.JAVA_BYTE);

        // The device's side of a read request: pop, walk, fill every writable byte, complete, publish.
        q.setKicksEnabled(false);
        assertEquals(head, q.popAvail());
        DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(8));
        q.walk(head, chain);
        for (int i = 0; i < chain.segmentCount(); i++) {
            if (chain.writable(i)) {
                chain.regionSegment(i).asSlice(chain.regionOffset(i), chain.length(i)).fill((byte) 0x5a);
            }
        }
        q.logWritable(chain);
        q.pushUsed(head, 2 * PAGE + 8);
        q.publishUsed();
        q.setKicksEnabled(true);

        byte[] after = ram.at(0, RAM).toArray(ValueLayout.JAVA_BYTE);
        int changed = 0;
        for (int gpa = 0; gpa < RAM; gpa++) {
            if (before[gpa] != after[gpa]) {
                changed++;
                assertTrue(log.isDirty(gpa), "byte at 0x" + Integer.toHexString(gpa) + " changed, its page is not marked");
            }
        }
        assertTrue(changed > 2 * PAGE, "the test wrote the data, status and used ring (" + changed + " bytes)");
        assertFalse(log.isDirty(header), "the request header is only read");
        assertFalse(log.isDirty(untouched));
    }

    @Test
    void withoutAUsedRingLogAddressOnlyBuffersAreMarked() throws Exception {
        SplitRingDriver driver = new SplitRingDriver(ram, 8);
        long buf = ram.alloc(PAGE, PAGE);
        SplitVirtqueue q = driver.deviceQueue(false, false);
        q.logWritesTo(log, -1);
        int head = driver.addChain(Buf.writable(buf, 1));
        driver.publish();
        assertEquals(head, q.popAvail());
        DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(8));
        q.walk(head, chain);
        q.logWritable(chain);
        q.pushUsed(head, 1);
        q.publishUsed();
        assertTrue(log.isDirty(buf));
        assertFalse(log.isDirty(driver.usedGpa()));
        assertEquals(0, log.outOfRange());
    }
}
