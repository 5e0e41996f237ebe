package io.vhostblk.compat;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.drivers.NullDriver;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole compat-lib request path allocates nothing per request: decode, IoVector, status byte,
 * a pass-through module, and a module sending every request below as a child request (the way
 * crypt and zero-detect work) reading the data through the IoVector.
 */
class HandlerAllocationTest {
    private static final int SIZE = 128;
    private static final int ROUNDS = 100_000;

    /** Checks the write's data for zeros, then sends it below as a child WRITE_ZEROES or WRITE. */
    private static final class ChildModule implements ModuleInstance {
        @Override
        public BlockHook openQueue(HookContext context) {
            DriverCompletion done = (child, result) -> context.complete(child.parent(), result);
            return r -> {
                boolean zeros = r.op() == BlockOp.WRITE && r.data().isAllZero(0, r.length());
                BlockRequest child = context.child(r).set(zeros ? BlockOp.WRITE_ZEROES : r.op(), r.offset(), r.length(),
                        zeros ? IoVector.NONE : r.data(), false);
                context.submitBelow(child, done);
                return HookAction.TAKE_OVER;
            };
        }
    }

    @Test
    void aGuestWriteThroughTwoModulesAllocatesNothingPerRequest() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int[] used = new int[2];
        try (GuestRam ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
             NullDriver driver = NullDriver.create(1 << 30, true)) {
            SplitRingDriver ring = new SplitRingDriver(ram, SIZE);
            long header = ram.alloc(VirtioBlk.HEADER_BYTES, 16);
            long data = ram.alloc(8192, 4096);
            long status = ram.alloc(1, 1);
            ram.at(header, VirtioBlk.HEADER_BYTES).set(SplitRingDriver.U32, 0, VirtioBlk.T_OUT);
            ram.at(header, VirtioBlk.HEADER_BYTES).set(SplitRingDriver.U64, 8, 64);
            int head = ring.addChain(Buf.readable(header, VirtioBlk.HEADER_BYTES), Buf.readable(data, 4096),
                    Buf.readable(data + 4096, 4096), Buf.writable(status, 1));
            ring.publish();
            SplitVirtqueue queue = ring.deviceQueue(true, true);
            BlockDevice device = new BlockDevice("alloc", "test", driver, true);
            device.hooks(new HookChain(List.of(
                    HookChainSemanticsTest.module("pass", c -> r -> HookAction.PASS),
                    new ChainEntry("child", "1", new ChildModule()))));
            try (VirtioBlkHandler handler = new VirtioBlkHandler(device, 0, SIZE, 2 * SIZE, (h, len) -> {
                used[0]++;
                used[1] = len;
            })) {
                long perRound = 0;
                for (int warm = 0; warm < 3; warm++) {
                    long before = mx.getCurrentThreadAllocatedBytes();
                    for (int i = 0; i < ROUNDS; i++) {
                        queue.walk(head, handler.chainFor(head));
                        handler.submit(head);
                    }
                    perRound = mx.getCurrentThreadAllocatedBytes() - before;
                }
                assertEquals(3 * ROUNDS, used[0], "every request was answered");
                assertEquals(1, used[1], "a write answers with the status byte only");
                assertEquals(VirtioBlk.S_OK, ram.at(status, 1).get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
                assertEquals(0, handler.inFlight());
                // Anything allocating per request would cost >= 16 bytes x ROUNDS.
                assertTrue(perRound < ROUNDS, "request path allocated " + perRound + " bytes in " + ROUNDS + " requests");
            }
        }
    }
}
