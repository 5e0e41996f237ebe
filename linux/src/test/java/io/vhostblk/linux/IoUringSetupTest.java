package io.vhostblk.linux;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** io_uring setup-flag fallback, against a played kernel that refuses chosen flags, and the real one. */
class IoUringSetupTest {
    private static final int BASE = IoUring.SETUP_CQSIZE | IoUring.SETUP_CLAMP;

    /** A kernel that answers EINVAL to any flag in {@code refused} and passes the rest to the real one. */
    private static final class PickyKernel implements IoUring.SetupCall {
        final int refused;
        final List<Integer> asked = new ArrayList<>();
        final int errno;

        PickyKernel(int refused, int errno) {
            this.refused = refused;
            this.errno = errno;
        }

        @Override
        public long setup(int sqEntries, MemorySegment params) {
            int flags = params.get(ValueLayout.JAVA_INT, 8);
            asked.add(flags);
            return (flags & refused) != 0 ? -errno : IoUring.KERNEL.setup(sqEntries, params);
        }
    }

    @Test
    void aKernelWithoutSingleIssuerGetsTheNextChoice() throws Exception {
        PickyKernel kernel = new PickyKernel(IoUring.SETUP_SINGLE_ISSUER, Errno.EINVAL);
        try (IoUring ring = IoUring.create(8, 16, IoUring.EVENT_LOOP_FLAGS, kernel)) {
            assertEquals(BASE | IoUring.EVENT_LOOP_FLAGS[1], ring.setupFlags());
            assertFalse(ring.disabled(), "no R_DISABLED without SINGLE_ISSUER");
            assertEquals(List.of(BASE | IoUring.EVENT_LOOP_FLAGS[0], BASE | IoUring.EVENT_LOOP_FLAGS[1]), kernel.asked);
            assertNopCompletes(ring);
        }
    }

    @Test
    void aKernelWithoutCoopTaskrunOrSubmitAllGetsPlainFlags() throws Exception {
        PickyKernel kernel = new PickyKernel(IoUring.SETUP_COOP_TASKRUN | IoUring.SETUP_SUBMIT_ALL, Errno.EINVAL);
        try (IoUring ring = IoUring.create(8, 16, IoUring.EVENT_LOOP_FLAGS, kernel)) {
            assertEquals(BASE, ring.setupFlags());
            assertEquals(IoUring.EVENT_LOOP_FLAGS.length, kernel.asked.size(), "every choice tried, in order");
            assertNopCompletes(ring);
        }
    }

    @Test
    void aRefusalOtherThanEinvalIsNotRetriedWithOtherFlags() {
        PickyKernel kernel = new PickyKernel(-1, Errno.EPERM);
        LinuxException e = assertThrows(LinuxException.class, () -> IoUring.create(8, 16, IoUring.EVENT_LOOP_FLAGS, kernel));
        assertEquals(Errno.EPERM, e.errno());
        assertEquals(1, kernel.asked.size());
    }

    @Test
    void einvalForEveryChoiceIsThrownWithTheLastFlags() {
        PickyKernel kernel = new PickyKernel(-1, Errno.EINVAL);
        LinuxException e = assertThrows(LinuxException.class, () -> IoUring.create(8, 16, IoUring.EVENT_LOOP_FLAGS, kernel));
        assertEquals(Errno.EINVAL, e.errno());
        assertTrue(e.getMessage().contains("flags 0x" + Integer.toHexString(BASE)), e.getMessage());
    }

    @Test
    void theRealKernelGivesAWorkingRingAndSingleIssuerMeansIt() throws Exception {
        try (IoUring ring = IoUring.create(8, 16, IoUring.EVENT_LOOP_FLAGS, IoUring.KERNEL)) {
            String flags = IoUring.describeSetupFlags(ring.setupFlags());
            System.getLogger(IoUringSetupTest.class.getName()).log(System.Logger.Level.INFO, "this kernel's ring: " + flags);
            assertTrue(flags.startsWith("CQSIZE|CLAMP"), flags);
            assertNopCompletes(ring);
            if ((ring.setupFlags() & IoUring.SETUP_SINGLE_ISSUER) != 0) {
                // This thread enabled the ring, so it is the submitter; another thread is refused.
                assertTrue(ring.prepare(IoUring.OP_NOP, 0, -1, 0, 0, 0, 0, 7));
                int other = CompletableFuture.supplyAsync(ring::submit).get(10, TimeUnit.SECONDS);
                assertEquals(-Errno.EEXIST, other);
                assertEquals(1, ring.submitAndWait(1));
                assertEquals(7, ring.cqeUserData(ring.cqHead()));
                ring.consume(ring.cqHead() + 1);
            }
        }
    }

    @Test
    void setupFlagsAreNamedForTheLog() {
        assertEquals("CQSIZE|CLAMP|SUBMIT_ALL", IoUring.describeSetupFlags(BASE | IoUring.SETUP_SUBMIT_ALL));
        assertEquals("none", IoUring.describeSetupFlags(0));
        assertEquals("SINGLE_ISSUER|0x40000000", IoUring.describeSetupFlags(IoUring.SETUP_SINGLE_ISSUER | (1 << 30)));
    }

    /** Enables the ring if needed, then one NOP goes in and its CQE comes out. */
    private static void assertNopCompletes(IoUring ring) {
        assertEquals(0, ring.enable());
        assertFalse(ring.disabled());
        assertTrue(ring.prepare(IoUring.OP_NOP, 0, -1, 0, 0, 0, 0, 42));
        assertEquals(1, ring.submitAndWait(1));
        if (ring.taskRunPending()) {
            ring.submitAndWait(0);
        }
        assertEquals(1, ring.cqTail() - ring.cqHead());
        assertEquals(42, ring.cqeUserData(ring.cqHead()));
        assertEquals(0, ring.cqeResult(ring.cqHead()));
        ring.consume(ring.cqHead() + 1);
    }
}
