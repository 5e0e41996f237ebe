package io.vhostblk.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * One io_uring instance through its raw system calls: the submission ring, the completion ring
 * and the SQE array mapped as {@link MemorySegment}s. Owned by one thread; nothing here allocates
 * or locks after {@link #create}.
 *
 * <p>Layouts (include/uapi/linux/io_uring.h): {@code struct io_uring_params} is 120 bytes —
 * sq_entries@0, cq_entries@4, flags@8, sq_thread_cpu@12, sq_thread_idle@16, features@20,
 * wq_fd@24, resv[3]@28, sq_off@40 (head, tail, ring_mask, ring_entries, flags, dropped, array,
 * resv1: u32 each, user_addr u64), cq_off@80 (head, tail, ring_mask, ring_entries, overflow,
 * cqes, flags, resv1: u32 each, user_addr u64). An SQE is 64 bytes, a CQE 16.
 *
 * <p>Ordering: the kernel writes the CQ tail and reads the SQ tail and CQ head concurrently, so
 * the CQ tail and SQ head are loaded with acquire, and the SQ tail and CQ head stored with release.
 */
public final class IoUring implements AutoCloseable {
    public static final int SYS_IO_URING_SETUP = 425;
    public static final int SYS_IO_URING_ENTER = 426;
    public static final int SYS_IO_URING_REGISTER = 427;

    public static final int OP_NOP = 0;
    public static final int OP_READV = 1;
    public static final int OP_WRITEV = 2;
    public static final int OP_FSYNC = 3;
    public static final int OP_POLL_ADD = 6;
    public static final int OP_POLL_REMOVE = 7;
    /** off = offset, addr = length, len = mode. */
    public static final int OP_FALLOCATE = 17;
    public static final int OP_READ = 22;
    public static final int OP_WRITE = 23;

    /** SQE flag: {@code fd} is an index into the registered file table. */
    public static final int SQE_FIXED_FILE = 1;
    /** fsync_flags: fdatasync instead of fsync. */
    public static final int FSYNC_DATASYNC = 1;
    /** POLL_ADD len: keep the poll armed after each event (5.13+). */
    public static final int POLL_ADD_MULTI = 1;
    /** CQE flag: a multishot request stays armed and will post more CQEs. */
    public static final int CQE_F_MORE = 1 << 1;

    public static final int SETUP_CQSIZE = 1 << 3;
    public static final int SETUP_CLAMP = 1 << 4;
    /** The ring starts disabled; {@link #enable()} starts it (and, with SINGLE_ISSUER, names its submitter). 5.10+. */
    public static final int SETUP_R_DISABLED = 1 << 6;
    public static final int SETUP_SUBMIT_ALL = 1 << 7;
    /** Completions are posted when the task next enters the kernel, without interrupting it (no IPI). 5.19+. */
    public static final int SETUP_COOP_TASKRUN = 1 << 8;
    /** With COOP_TASKRUN: the kernel sets {@link #SQ_TASKRUN} while completions wait for that entry. 5.19+. */
    public static final int SETUP_TASKRUN_FLAG = 1 << 9;
    /** Only one task submits (the one that enables the ring): the kernel skips its submission locking. 6.0+. */
    public static final int SETUP_SINGLE_ISSUER = 1 << 12;

    /**
     * Setup flags a per-queue event loop wants, best first; each later entry drops what a
     * kernel may refuse (EINVAL) in the one before. Base flags (CQSIZE, CLAMP) are always added.
     */
    public static final int[] EVENT_LOOP_FLAGS = {
        SETUP_SINGLE_ISSUER | SETUP_R_DISABLED | SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG | SETUP_SUBMIT_ALL,
        SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG | SETUP_SUBMIT_ALL,
        SETUP_SUBMIT_ALL,
        0,
    };

    public static final int FEAT_SINGLE_MMAP = 1;
    public static final int FEAT_NODROP = 1 << 1;

    public static final int ENTER_GETEVENTS = 1;
    /** SQ ring flag: completions overflowed into the kernel's list; an enter with GETEVENTS flushes them. */
    public static final int SQ_CQ_OVERFLOW = 1 << 1;
    /** SQ ring flag (TASKRUN_FLAG): completions wait to be posted until an enter with GETEVENTS. */
    public static final int SQ_TASKRUN = 1 << 2;

    public static final int REGISTER_FILES = 2;
    public static final int REGISTER_EVENTFD = 4;
    public static final int REGISTER_ENABLE_RINGS = 12;

    /** The io_uring_setup system call, replaceable in tests that play a kernel refusing some flags. */
    @FunctionalInterface
    public interface SetupCall {
        /** Returns the ring fd or {@code -errno}; {@code params} holds the flags at offset 8 and is filled in. */
        long setup(int sqEntries, MemorySegment params);
    }

    /** The real system call. */
    public static final SetupCall KERNEL = (sqEntries, params) ->
            syscall(SYS_IO_URING_SETUP, sqEntries, params.address(), 0, 0, 0, 0);

    static final long OFF_SQ_RING = 0L;
    static final long OFF_CQ_RING = 0x8000000L;
    static final long OFF_SQES = 0x10000000L;

    static final int PARAMS_SIZE = 120;
    static final int SQE_SIZE = 64;
    static final int CQE_SIZE = 16;

    private static final VarHandle INT = JAVA_INT.varHandle().withInvokeExactBehavior();
    /** {@code long syscall(long nr, ...)}: every variadic argument passed as a full 64-bit word. */
    private static final MethodHandle SYSCALL = Libc.bind("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1));

    private final int ringFd;
    private final int features;
    private final int setupFlags;
    private boolean disabled;
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqes;
    private final Arena scratch;
    private final int sqEntries;
    private final int sqMask;
    private final int cqEntries;
    private final int cqMask;
    private final long sqHeadOff;
    private final long sqTailOff;
    private final long sqFlagsOff;
    private final long cqHeadOff;
    private final long cqTailOff;
    private final long cqesOff;
    /** Next SQE to fill (our copy of the SQ tail). */
    private int sqTail;
    /** SQ tail as last handed to the kernel by {@link #submit}. */
    private int sqSubmitted;
    /** Our copy of the CQ head. */
    private int cqHead;
    private boolean closed;

    private IoUring(int ringFd, MemorySegment params, MemorySegment sqRing, MemorySegment cqRing, MemorySegment sqes, Arena scratch) {
        this.ringFd = ringFd;
        this.features = params.get(JAVA_INT, 20);
        this.setupFlags = params.get(JAVA_INT, 8);
        this.disabled = (setupFlags & SETUP_R_DISABLED) != 0;
        this.sqRing = sqRing;
        this.cqRing = cqRing;
        this.sqes = sqes;
        this.scratch = scratch;
        this.sqEntries = params.get(JAVA_INT, 0);
        this.cqEntries = params.get(JAVA_INT, 4);
        this.sqHeadOff = params.get(JAVA_INT, 40);
        this.sqTailOff = params.get(JAVA_INT, 44);
        this.sqMask = sqRing.get(JAVA_INT, params.get(JAVA_INT, 48));
        this.sqFlagsOff = params.get(JAVA_INT, 56);
        this.cqHeadOff = params.get(JAVA_INT, 80);
        this.cqTailOff = params.get(JAVA_INT, 84);
        this.cqMask = cqRing.get(JAVA_INT, params.get(JAVA_INT, 88));
        this.cqesOff = params.get(JAVA_INT, 100);
        this.sqTail = sqRing.get(JAVA_INT, sqTailOff);
        this.sqSubmitted = sqTail;
        this.cqHead = cqRing.get(JAVA_INT, cqHeadOff);
        // The SQ index array maps ring positions to SQEs; an identity map set once lets each
        // submission write only the SQE itself.
        long arrayOff = params.get(JAVA_INT, 64);
        for (int i = 0; i < sqEntries; i++) {
            sqRing.set(JAVA_INT, arrayOff + 4L * i, i);
        }
    }

    /**
     * Sets up a ring of {@code sqEntries} submission and {@code cqEntries} completion entries
     * (rounded up to powers of two and clamped to the kernel's maxima), with SUBMIT_ALL where the
     * kernel has it.
     *
     * @throws LinuxException with the kernel's errno: ENOSYS (no io_uring), EPERM (disabled by
     *                        sysctl or seccomp), ENOMEM (memlock or memory), EINVAL (bad sizes or flags)
     */
    public static IoUring create(int sqEntries, int cqEntries) throws LinuxException {
        return create(sqEntries, cqEntries, new int[] {SETUP_SUBMIT_ALL, 0}, KERNEL);
    }

    /**
     * Sets up a ring with the first of {@code flagChoices} the kernel accepts: a choice refused
     * with EINVAL (flags this kernel lacks) is followed by the next; any other refusal, or EINVAL
     * for the last choice, is thrown. {@link #setupFlags()} tells which choice ran.
     */
    public static IoUring create(int sqEntries, int cqEntries, int[] flagChoices, SetupCall call) throws LinuxException {
        if (flagChoices.length == 0) {
            throw new IllegalArgumentException("no io_uring setup flags to try");
        }
        Arena scratch = Arena.ofShared();
        try {
            MemorySegment params = scratch.allocate(PARAMS_SIZE, 8);
            long fd = -Errno.EINVAL;
            int flags = 0;
            for (int choice : flagChoices) {
                flags = SETUP_CQSIZE | SETUP_CLAMP | choice;
                params.fill((byte) 0);
                params.set(JAVA_INT, 4, cqEntries);
                params.set(JAVA_INT, 8, flags);
                fd = call.setup(sqEntries, params);
                if (fd != -Errno.EINVAL) {
                    break;
                }
            }
            Libc.check("io_uring_setup", fd, sqEntries + " SQ / " + cqEntries + " CQ entries, flags 0x"
                    + Integer.toHexString(flags));
            // Keep the flags as asked, whatever the call left in params.
            params.set(JAVA_INT, 8, flags);
            return map((int) fd, params, scratch);
        } catch (LinuxException | RuntimeException e) {
            scratch.close();
            throw e;
        }
    }

    private static IoUring map(int fd, MemorySegment params, Arena scratch) throws LinuxException {
        int sqN = params.get(JAVA_INT, 0);
        int cqN = params.get(JAVA_INT, 4);
        int feats = params.get(JAVA_INT, 20);
        long sqSize = params.get(JAVA_INT, 64) + 4L * sqN;
        long cqSize = params.get(JAVA_INT, 100) + (long) CQE_SIZE * cqN;
        int prot = Libc.PROT_READ | Libc.PROT_WRITE;
        int flags = Libc.MAP_SHARED | Libc.MAP_POPULATE;
        MemorySegment sq = null;
        MemorySegment cq = null;
        try {
            if ((feats & FEAT_SINGLE_MMAP) != 0) {
                sq = Libc.mmap(Math.max(sqSize, cqSize), prot, flags, fd, OFF_SQ_RING);
                cq = sq;
            } else {
                sq = Libc.mmap(sqSize, prot, flags, fd, OFF_SQ_RING);
                cq = Libc.mmap(cqSize, prot, flags, fd, OFF_CQ_RING);
            }
            MemorySegment sqes = Libc.mmap((long) SQE_SIZE * sqN, prot, flags, fd, OFF_SQES);
            return new IoUring(fd, params, sq, cq, sqes, scratch);
        } catch (LinuxException e) {
            if (cq != null && cq != sq) {
                Libc.munmap(cq);
            }
            if (sq != null) {
                Libc.munmap(sq);
            }
            Libc.close(fd);
            throw e;
        }
    }

    /** The ring's own file descriptor. */
    public int fd() {
        return ringFd;
    }

    public int sqEntries() {
        return sqEntries;
    }

    public int cqEntries() {
        return cqEntries;
    }

    /** Names the IORING_SETUP_* bits in {@code flags} for logs, e.g. {@code CQSIZE|CLAMP|SUBMIT_ALL}. */
    public static String describeSetupFlags(int flags) {
        String[] names = {"IOPOLL", "SQPOLL", "SQ_AFF", "CQSIZE", "CLAMP", "ATTACH_WQ", "R_DISABLED", "SUBMIT_ALL",
            "COOP_TASKRUN", "TASKRUN_FLAG", "SQE128", "CQE32", "SINGLE_ISSUER", "DEFER_TASKRUN"};
        StringBuilder b = new StringBuilder();
        for (int bit = 0; bit < 32; bit++) {
            if ((flags & (1 << bit)) != 0) {
                b.append(b.isEmpty() ? "" : "|").append(bit < names.length ? names[bit] : "0x" + Integer.toHexString(1 << bit));
            }
        }
        return b.isEmpty() ? "none" : b.toString();
    }

    /** The IORING_SETUP_* flags this ring was set up with (the choice the kernel accepted). */
    public int setupFlags() {
        return setupFlags;
    }

    /** Whether the ring still waits for {@link #enable()} (set up with R_DISABLED). */
    public boolean disabled() {
        return disabled;
    }

    /**
     * Starts a ring set up with R_DISABLED; with SINGLE_ISSUER the calling thread becomes the only
     * one that may submit. Returns 0 or {@code -errno}; a no-op for an enabled ring.
     */
    public int enable() {
        if (!disabled) {
            return 0;
        }
        int rc = (int) syscall(SYS_IO_URING_REGISTER, ringFd, REGISTER_ENABLE_RINGS, 0, 0, 0, 0);
        if (rc == 0) {
            disabled = false;
        }
        return rc;
    }

    /** IORING_FEAT_* bits the kernel reported. */
    public int features() {
        return features;
    }

    /** Free SQEs: entries neither filled nor still unread by the kernel. */
    public int sqSpace() {
        int kernelHead = (int) INT.getAcquire(sqRing, sqHeadOff);
        return sqEntries - (sqTail - kernelHead);
    }

    /** SQEs filled but not yet handed to the kernel. */
    public int pending() {
        return sqTail - sqSubmitted;
    }

    /**
     * Fills the next SQE; returns false when the SQ is full. Every field is written, so an SQE
     * left over from an earlier operation cannot leak flags into this one.
     *
     * @param opFlags rw_flags, fsync_flags or poll32_events, by opcode
     */
    public boolean prepare(int opcode, int sqeFlags, int fd, long off, long addr, int len, int opFlags, long userData) {
        if (sqSpace() == 0) {
            return false;
        }
        long sqe = (long) (sqTail & sqMask) * SQE_SIZE;
        sqes.set(JAVA_BYTE, sqe, (byte) opcode);
        sqes.set(JAVA_BYTE, sqe + 1, (byte) sqeFlags);
        sqes.set(JAVA_SHORT, sqe + 2, (short) 0);
        sqes.set(JAVA_INT, sqe + 4, fd);
        sqes.set(JAVA_LONG, sqe + 8, off);
        sqes.set(JAVA_LONG, sqe + 16, addr);
        sqes.set(JAVA_INT, sqe + 24, len);
        sqes.set(JAVA_INT, sqe + 28, opFlags);
        sqes.set(JAVA_LONG, sqe + 32, userData);
        sqes.set(JAVA_LONG, sqe + 40, 0L);
        sqes.set(JAVA_LONG, sqe + 48, 0L);
        sqes.set(JAVA_LONG, sqe + 56, 0L);
        sqTail++;
        return true;
    }

    /** Publishes the filled SQEs and hands them to the kernel; returns how many it took, or {@code -errno}. */
    public int submit() {
        return enter(0, 0);
    }

    /** Like {@link #submit} and then blocks until at least {@code minComplete} completions are ready. */
    public int submitAndWait(int minComplete) {
        return enter(minComplete, ENTER_GETEVENTS);
    }

    private int enter(int minComplete, int flags) {
        int toSubmit = sqTail - sqSubmitted;
        if (toSubmit == 0 && flags == 0) {
            return 0;
        }
        INT.setRelease(sqRing, sqTailOff, sqTail);
        long rc = syscall(SYS_IO_URING_ENTER, ringFd, toSubmit, minComplete, flags, 0, 0);
        if (rc > 0) {
            sqSubmitted += (int) rc;
        }
        return (int) rc;
    }

    /** Whether completions are waiting in the kernel's overflow list (flushed by {@link #submitAndWait}). */
    public boolean cqOverflowed() {
        return ((int) INT.getAcquire(sqRing, sqFlagsOff) & SQ_CQ_OVERFLOW) != 0;
    }

    /**
     * Whether completions wait in the kernel for this task to enter it (COOP_TASKRUN with
     * TASKRUN_FLAG): {@link #submitAndWait submitAndWait(0)} posts them.
     */
    public boolean taskRunPending() {
        return ((int) INT.getAcquire(sqRing, sqFlagsOff) & SQ_TASKRUN) != 0;
    }

    /** The kernel's CQ tail, loaded with acquire so the CQEs before it are visible. */
    public int cqTail() {
        return (int) INT.getAcquire(cqRing, cqTailOff);
    }

    /** Our CQ head: the next CQE to consume. */
    public int cqHead() {
        return cqHead;
    }

    /** user_data of the CQE at ring position {@code pos}. */
    public long cqeUserData(int pos) {
        return cqRing.get(JAVA_LONG, cqesOff + (long) (pos & cqMask) * CQE_SIZE);
    }

    /** res of the CQE at {@code pos}: bytes or {@code -errno}. */
    public int cqeResult(int pos) {
        return cqRing.get(JAVA_INT, cqesOff + (long) (pos & cqMask) * CQE_SIZE + 8);
    }

    /** flags of the CQE at {@code pos}. */
    public int cqeFlags(int pos) {
        return cqRing.get(JAVA_INT, cqesOff + (long) (pos & cqMask) * CQE_SIZE + 12);
    }

    /** Hands CQEs up to (excluding) {@code newHead} back to the kernel (release store). */
    public void consume(int newHead) {
        cqHead = newHead;
        INT.setRelease(cqRing, cqHeadOff, newHead);
    }

    /** Registers a file table so SQEs can name files by index with {@link #SQE_FIXED_FILE}; returns 0 or {@code -errno}. */
    public int registerFiles(int... fds) {
        MemorySegment table = scratch.allocate(JAVA_INT, fds.length);
        for (int i = 0; i < fds.length; i++) {
            table.setAtIndex(JAVA_INT, i, fds[i]);
        }
        return (int) syscall(SYS_IO_URING_REGISTER, ringFd, REGISTER_FILES, table.address(), fds.length, 0, 0);
    }

    /** Makes the kernel signal {@code eventFd} whenever it posts a CQE; returns 0 or {@code -errno}. */
    public int registerEventFd(int eventFd) {
        MemorySegment arg = scratch.allocate(JAVA_INT);
        arg.set(JAVA_INT, 0, eventFd);
        return (int) syscall(SYS_IO_URING_REGISTER, ringFd, REGISTER_EVENTFD, arg.address(), 1, 0, 0);
    }

    /** Unmaps the rings and closes the ring; the kernel cancels whatever is still in flight. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        Libc.munmap(sqes);
        if (cqRing != sqRing) {
            Libc.munmap(cqRing);
        }
        Libc.munmap(sqRing);
        Libc.close(ringFd);
        scratch.close();
    }

    /** The raw {@code syscall(2)}: the kernel's result, or {@code -errno}. */
    static long syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
        MemorySegment st = Libc.callState();
        try {
            return Libc.result((long) SYSCALL.invokeExact(st, nr, a1, a2, a3, a4, a5, a6), st);
        } catch (Throwable t) {
            throw Libc.unexpected(t);
        }
    }
}
