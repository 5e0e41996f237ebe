package io.vhostblk.frontend;

import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A front-end that hangs up and connects again at once is served every time, by a real virtio-blk device. */
class ReconnectTest {
    private static final int BLOCK = 4096;

    @TempDir
    Path dir;

    @Test
    void immediateReconnectIsServedAHundredTimesOutOfAHundred() throws Exception {
        Path socket = dir.resolve("blk.sock");
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("reconnect", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            for (int round = 0; round < 100; round++) {
                // No pause, no GET_VRING_BASE: the previous connection was just closed under a running queue.
                fe.connect(socket, fe.ring.availIdx());
                long sector = (round % 32) * (BLOCK / VirtioBlk.SECTOR_SIZE);
                MemorySegment buf = fe.dataOf(0, BLOCK);
                buf.fill((byte) 0);
                buf.set(ValueLayout.JAVA_INT, 0, round);
                buf.set(ValueLayout.JAVA_INT, BLOCK - 4, ~round);
                assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_OUT, sector, BLOCK), "write in round " + round);
                buf.fill((byte) 0);
                assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, sector, BLOCK), "read in round " + round);
                assertEquals(round, buf.get(ValueLayout.JAVA_INT, 0), "round " + round);
                assertEquals(~round, buf.get(ValueLayout.JAVA_INT, BLOCK - 4), "round " + round);
                fe.hangUp();
            }
        }
    }
}
