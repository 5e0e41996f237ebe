package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class DescriptorChainTest {

    @Test
    void gathersAndScattersAcrossSegments() throws Exception {
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20))) {
            SplitRingDriver driver = new SplitRingDriver(ram, 4);
            SplitVirtqueue q = driver.deviceQueue(false, false);
            long r = ram.alloc(10, 1);
            long w = ram.alloc(10, 1);
            for (int i = 0; i < 10; i++) {
                ram.at(r + i, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) (i + 1));
            }
            driver.addChain(Buf.readable(r, 3), Buf.readable(r + 3, 7), Buf.writable(w, 4), Buf.writable(w + 4, 6));
            driver.publish();
            DescriptorChain c = new DescriptorChain(DescriptorChain.capacityFor(4));
            q.walk(q.popAvail(), c);
            byte[] got = new byte[6];
            assertEquals(6, c.copyFromReadable(1, MemorySegment.ofArray(got), 0, 6));
            assertArrayEquals(new byte[]{2, 3, 4, 5, 6, 7}, got);
            assertEquals(4, c.copyFromReadable(6, MemorySegment.ofArray(new byte[8]), 0, 8), "short at the end");
            byte[] put = {9, 8, 7, 6, 5};
            assertEquals(5, c.copyToWritable(2, MemorySegment.ofArray(put), 0, 5));
            assertArrayEquals(new byte[]{0, 0, 9, 8, 7, 6, 5, 0, 0, 0}, ram.at(w, 10).toArray(ValueLayout.JAVA_BYTE));
            assertEquals(0, c.copyToWritable(10, MemorySegment.ofArray(put), 0, 5));
            assertThrows(IllegalArgumentException.class, () -> c.copyToWritable(-1, MemorySegment.ofArray(put), 0, 1));
        }
    }

    @Test
    void capacityIsFixed() {
        assertEquals(256, DescriptorChain.capacityFor(128));
        assertEquals(7, new DescriptorChain(7).capacity());
        assertThrows(IllegalArgumentException.class, () -> new DescriptorChain(0));
        assertEquals(-1, new DescriptorChain(1).head());
    }
}
