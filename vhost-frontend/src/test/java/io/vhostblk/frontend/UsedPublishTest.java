package io.vhostblk.frontend;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.drivers.NullDriver;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * When the queue loop makes answers visible within a batch: at once to a guest that waits for
 * its next answer (so it refills while the batch is served), every few answers to one that polls.
 * A driver that completes inside submit records the guest's used index as each request reaches it.
 */
class UsedPublishTest {
    private static final int REQUESTS = 4;

    @TempDir
    Path dir;

    @Test
    void aGuestWaitingForAnAnswerSeesEachOneBeforeTheNextRequestStarts() throws Exception {
        assertEquals(List.of(0, 1, 2, 3), usedIndexAtEachSubmit(false));
    }

    @Test
    void aGuestThatPollsGetsTheBatchPublishedTogether() throws Exception {
        assertEquals(List.of(0, 0, 0, 0), usedIndexAtEachSubmit(true));
    }

    /** Offers REQUESTS reads in one batch and returns the used index the guest saw at each submit. */
    private List<Integer> usedIndexAtEachSubmit(boolean interruptsOff) throws Exception {
        List<Integer> seen = new CopyOnWriteArrayList<>();
        try (BlkTestFrontEnd fe = new BlkTestFrontEnd(4096);
             RecordingDriver driver = new RecordingDriver(NullDriver.create(1 << 20, true), () -> seen.add(fe.ring.usedIdx()));
             VhostUserServer server = BlkTestFrontEnd.serve("publish", dir.resolve("blk.sock"), driver)) {
            fe.connect(dir.resolve("blk.sock"), 0);
            // A first request makes the back-end's first (unconditional) signal, so the batch
            // below is decided by the driver's flags alone.
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, 0, 512));
            seen.clear();
            fe.ring.setAvailFlags(interruptsOff ? SplitVirtqueue.AVAIL_F_NO_INTERRUPT : 0);
            for (int slot = 0; slot < REQUESTS; slot++) {
                fe.offer(slot, VirtioBlk.T_IN, slot, 512);
            }
            fe.publishAndKick();
            for (int i = 0; i < REQUESTS; i++) {
                fe.awaitUsed();
            }
            assertEquals(1 + REQUESTS, fe.ring.usedIdx());
            return seen.stream().map(i -> i - 1).toList();
        }
    }

    /** Delegates to a driver and runs a probe as each request is submitted. */
    private record RecordingDriver(BlockDriver inner, Runnable probe) implements BlockDriver {
        @Override
        public String kind() {
            return inner.kind();
        }

        @Override
        public String target() {
            return inner.target();
        }

        @Override
        public long capacity() {
            return inner.capacity();
        }

        @Override
        public boolean readOnly() {
            return inner.readOnly();
        }

        @Override
        public boolean supportsDiscard() {
            return inner.supportsDiscard();
        }

        @Override
        public boolean supportsWriteZeroes() {
            return inner.supportsWriteZeroes();
        }

        @Override
        public DriverQueue openQueue(int queueIndex, DriverCompletion completion) throws DriverException {
            DriverQueue q = inner.openQueue(queueIndex, completion);
            return new DriverQueue() {
                @Override
                public void submit(BlockRequest request) {
                    probe.run();
                    q.submit(request);
                }

                @Override
                public void flushBatch() {
                    q.flushBatch();
                }

                @Override
                public int reap() {
                    return q.reap();
                }

                @Override
                public int completionFd() {
                    return q.completionFd();
                }

                @Override
                public int inFlight() {
                    return q.inFlight();
                }

                @Override
                public void close() {
                    q.close();
                }
            };
        }

        @Override
        public void sync() throws DriverException {
            inner.sync();
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
