package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-request path (pop, walk, decode, push, publish) must not allocate once compiled, on either ring. */
class HotPathAllocationTest {
    private static final int SIZE = 128;
    private static final int ROUNDS = 200_000;

    /** One request's round trip: the device's steps, then the driver's (allocation-free ones only). */
    @FunctionalInterface
    private interface Round {
        void run() throws Exception;
    }

    @Test
    void splitRequestPathDoesNotAllocate() throws Exception {
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20))) {
            SplitRingDriver driver = new SplitRingDriver(ram, SIZE);
            SplitVirtqueue q = driver.deviceQueue(true, true);
            long hdr = ram.alloc(16, 8);
            long data = ram.alloc(8192, 4096);
            long status = ram.alloc(1, 1);
            int head = driver.addIndirectChain(Buf.readable(hdr, 8), Buf.readable(hdr + 8, 8),
                    Buf.writable(data, 4096), Buf.writable(data + 4096, 4096), Buf.writable(status, 1));
            driver.publish();
            DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
            BlkRequest req = new BlkRequest(chain.capacity());
            assertNoAllocation(() -> {
                serve(q, chain, req);
                driver.reapUsed();
                driver.offer(head);
                driver.publish();
            });
            assertEquals(8192, req.dataLength());
        }
    }

    @Test
    void packedRequestPathDoesNotAllocate() throws Exception {
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20))) {
            PackedRingDriver driver = new PackedRingDriver(ram, SIZE);
            PackedVirtqueue q = driver.deviceQueue(true, true);
            long hdr = ram.alloc(16, 8);
            long data = ram.alloc(8192, 4096);
            long status = ram.alloc(1, 1);
            driver.addRequest(hdr, 16, data, 8192, true, status);
            driver.publish();
            DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
            BlkRequest req = new BlkRequest(chain.capacity());
            assertNoAllocation(() -> {
                serve(q, chain, req);
                driver.reapUsed();
                driver.addRequest(hdr, 16, data, 8192, true, status);
                driver.publish();
            });
            assertEquals(8192, req.dataLength());
        }
    }

    /** The device side of one request. */
    private static void serve(Virtqueue q, DescriptorChain chain, BlkRequest req) throws Exception {
        int h = q.popAvail();
        q.walk(h, chain);
        BlkRequestDecoder.decode(chain, req, 0);
        req.statusRegion().set(ValueLayout.JAVA_BYTE, req.statusOffset(), VirtioBlk.S_OK);
        q.pushUsed(h, req.usedLength(VirtioBlk.S_OK));
        q.publishUsed();
        q.setKicksEnabled(true);
        assertEquals(BlkRequest.Outcome.OK, req.outcome());
    }

    private static void assertNoAllocation(Round round) throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long perRound = 0;
        for (int warm = 0; warm < 3; warm++) {
            long before = mx.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < ROUNDS; i++) {
                round.run();
            }
            perRound = mx.getCurrentThreadAllocatedBytes() - before;
        }
        // Anything allocating per request would cost >= 16 bytes x ROUNDS.
        assertTrue(perRound < ROUNDS, "request path allocated " + perRound + " bytes in " + ROUNDS + " requests");
    }
}
