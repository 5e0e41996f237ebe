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
    public static final int SETUP_SUBMIT_ALL = 1 << 7;

    public static final int FEAT_SINGLE_MMAP = 1;
    public static final int FEAT_NODROP = 1 << 1;

    public static final int ENTER_GETEVENTS = 1;
    /** SQ ring flag: completions overflowed into the kernel's list; an enter with GETEVENTS flushes them. */
    public static final int SQ_CQ_OVERFLOW = 1 << 1;

    public static final int REGISTER_FILES = 2;
    public static final int REGISTER_EVENTFD = 4;

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
     * (rounded up to powers of two and clamped to the kernel's maxima).
     *
     * @throws LinuxException with the kernel's errno: ENOSYS (no io_uring), EPERM (disabled by
     *                        sysctl or seccomp), ENOMEM (memlock or memory), EINVAL (bad sizes or flags)
     */
    public static IoUring create(int sqEntries, int cqEntries) throws LinuxException {
        Arena scratch = Arena.ofShared();
        try {
            MemorySegment params = scratch.allocate(PARAMS_SIZE, 8);
            long fd = setup(sqEntries, cqEntries, SETUP_CQSIZE | SETUP_CLAMP | SETUP_SUBMIT_ALL, params);
            if (fd == -Errno.EINVAL) {
                // SUBMIT_ALL arrived in 5.18; without it a bad SQE stops the batch, which
                // submit() copes with by leaving the rest queued.
                fd = setup(sqEntries, cqEntries, SETUP_CQSIZE | SETUP_CLAMP, params);
            }
            Libc.check("io_uring_setup", fd, sqEntries + " SQ / " + cqEntries + " CQ entries");
            return map((int) fd, params, scratch);
        } catch (LinuxException | RuntimeException e) {
            scratch.close();
            throw e;
        }
    }

    private static long setup(int sqEntries, int cqEntries, int flags, MemorySegment params) {
        params.fill((byte) 0);
        params.set(JAVA_INT, 4, cqEntries);
        params.set(JAVA_INT, 8, flags);
        return syscall(SYS_IO_URING_SETUP, sqEntries, params.address(), 0, 0, 0, 0);
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
