package io.vhostblk.compat;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A module serves reads from a driver queue of its own, attached to the queue's loop
 * ({@code HookContext.attach}): the loop flushes and reaps that queue with its own, counts its
 * requests in flight, and is woken (through its mailbox fd) when the queue's completion fd fires.
 */
class AttachedQueueTest {

    /** A driver queue whose "kernel" is the test: completions become ready when the test says so. */
    private static final class OwnQueue implements DriverQueue {
        final EventFd doorbell;
        final ArrayDeque<BlockRequest> submitted = new ArrayDeque<>();
        final ArrayDeque<BlockRequest> ready = new ArrayDeque<>();
        final DriverCompletion completion;
        int flushes;
        boolean closed;

        OwnQueue(DriverCompletion completion) throws Exception {
            this.completion = completion;
            this.doorbell = EventFd.create(true);
        }

        /** The device finished everything submitted (from another thread in the test). */
        synchronized void finishAll() {
            ready.addAll(submitted);
            submitted.clear();
            doorbell.signal();
        }

        @Override
        public synchronized void submit(BlockRequest request) {
            submitted.add(request);
        }

        @Override
        public void flushBatch() {
            flushes++;
        }

        @Override
        public int reap() {
            int n = 0;
            BlockRequest r;
            while ((r = poll()) != null) {
                completion.complete(r, r.length());
                n++;
            }
            return n;
        }

        private synchronized BlockRequest poll() {
            return ready.poll();
        }

        @Override
        public int completionFd() {
            return doorbell.fd();
        }

        @Override
        public synchronized int inFlight() {
            return submitted.size() + ready.size();
        }

        @Override
        public void close() {
            closed = true;
            doorbell.close();
        }
    }

    @Test
    void theLoopServesAndWakesForAModulesOwnQueue() throws Exception {
        RamDriver disk = RamDriver.create(1 << 20);
        BlockDevice device = new BlockDevice("d0", "vm1", disk, true);
        OwnQueue[] own = new OwnQueue[1];
        BlockRequest[] pending = new BlockRequest[1];
        device.updateChain(c -> c.with(HookChainSemanticsTest.module("own", context -> {
            BlockRequest mine = context.newRequest();
            try {
                // The module's own read finished: the guest's request it served is done.
                own[0] = new OwnQueue((r, result) -> context.complete(pending[0], result));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            context.attach(own[0]);
            return r -> {
                if (r.op() != BlockOp.READ) {
                    return HookAction.PASS;
                }
                pending[0] = r;
                own[0].submit(mine.set(BlockOp.READ, r.offset(), r.length(), r.data(), false));
                return HookAction.TAKE_OVER;
            };
        }), 0));
        try (GuestRequests g = new GuestRequests(1 << 20, 16)) {
            VirtioBlkHandler context = g.open(device);
            long buf = g.buffer(4096, 0);
            g.start(VirtioBlk.T_IN, 0, buf, 4096, true);
            context.flushBatch();
            assertTrue(own[0].flushes > 0, "the loop flushes the attached queue's batch");
            assertEquals(2, context.inFlight(), "the guest request and the module's own request are in flight");
            assertEquals(0, context.reap());

            Thread device0 = Thread.ofPlatform().start(own[0]::finishAll);
            device0.join();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment fd = arena.allocate(Libc.POLLFD);
                fd.set(ValueLayout.JAVA_INT, 0, context.mailboxFd());
                fd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
                assertEquals(1, Libc.poll(fd, 1, 10_000), "the completion wakes the loop through its mailbox");
            }
            context.mailboxSeen();
            assertTrue(context.reap() > 0);
            List<GuestRequests.Done> done = g.reapUsed();
            assertEquals(1, done.size());
            assertEquals(VirtioBlk.S_OK, done.getFirst().status());
            assertEquals(0, context.inFlight());
            context.close();
            assertTrue(own[0].closed, "the loop closes the queues attached to it when it stops");
        }
    }
}
