package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.function.IntSupplier;

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

    /**
     * A request of header, 8 KiB data and status: a three-descriptor chain offered afresh each round
     * (split, packed), or a split ring's indirect chain of five offered again by its head.
     */
    @ParameterizedTest
    @ValueSource(strings = {"split", "packed", "split-indirect"})
    void requestPathDoesNotAllocate(String ring) throws Exception {
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20))) {
            RingDriver driver = ring.equals("packed") ? new PackedRingDriver(ram, SIZE) : new SplitRingDriver(ram, SIZE);
            Virtqueue q = driver.deviceQueue(true, true);
            long hdr = ram.alloc(16, 8);
            long data = ram.alloc(8192, 4096);
            long status = ram.alloc(1, 1);
            IntSupplier offer;
            if (ring.equals("split-indirect")) {
                int head = driver.addIndirectChain(Buf.readable(hdr, 8), Buf.readable(hdr + 8, 8),
                        Buf.writable(data, 4096), Buf.writable(data + 4096, 4096), Buf.writable(status, 1));
                SplitRingDriver split = (SplitRingDriver) driver;
                offer = () -> {
                    split.offer(head);
                    return head;
                };
            } else {
                offer = () -> driver.addRequest(hdr, 16, data, 8192, true, status);
                offer.getAsInt();
            }
            driver.publish();
            DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
            BlkRequest req = new BlkRequest(chain.capacity());
            assertNoAllocation(() -> {
                serve(q, chain, req);
                assertTrue(driver.reapUsed() >= 0);
                assertTrue(offer.getAsInt() >= 0);
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
