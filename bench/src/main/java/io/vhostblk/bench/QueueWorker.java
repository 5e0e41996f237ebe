package io.vhostblk.bench;

import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;

/**
 * The driver of one virtqueue (split or packed, through {@link BenchRing}), run on its own
 * thread: keeps iodepth requests (each a header/data/status chain of three descriptors) in flight, publishes refills in batches, kicks
 * only when the device asks (EVENT_IDX or NO_NOTIFY), and waits on the call eventfd or
 * busy-polls the used ring. Nothing is allocated per request.
 */
final class QueueWorker implements Runnable {
    private static final int CALL_POLL_MILLIS = 100;
    private static final int EINTR = 4;
    private static final ValueLayout.OfInt U32 = SplitRingDriver.U32;
    private static final ValueLayout.OfLong U64 = SplitRingDriver.U64;
    private static final byte STATUS_UNSET = (byte) 0xff;

    private enum Phase { MAIN, READ_BACK }

    private final int queue;
    private final BenchRing ring;
    private final QueueRing fds;
    private final boolean eventIdx;
    private final boolean busyPoll;
    private final int depth;
    private final int bs;
    private final RwMode mode;
    private final int readPercent;
    private final boolean verify;
    private final DataPattern pattern;
    private final WriteData writeData;
    private final long seed;
    /** Writes offered so far: each gets new content ({@link WriteData}). */
    private long writesOffered;
    private final WrittenBlocks written;
    private final OffsetSource offsets;
    private final long startNs;
    private final long endNs;
    private final long stallNs;

    private final MemorySegment[] header;
    private final MemorySegment[] data;
    private final MemorySegment[] status;
    private final long[] dataGpa;
    private final long[] submitNs;
    private final long[] diskOffset;
    private final boolean[] isRead;
    private final boolean[] check;
    private final boolean[] busy;
    private final MemorySegment pollFd;

    private final QueueStats stats = new QueueStats();
    private volatile boolean stopRequested;
    private volatile Throwable failure;
    private final com.sun.management.ThreadMXBean threads =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private Phase phase = Phase.MAIN;
    /** This thread's allocated bytes when the measured interval began and when the main phase ended; -1 unknown. */
    private long allocAtStart = -1;
    private long allocAtEnd = -1;
    private long readBackCursor;

    /** Allocates the request buffers in ram and writes the fixed descriptors of every slot. */
    QueueWorker(QueueRing q, GuestRam ram, BenchOptions o, boolean eventIdx, long spanBlocks, long startNs,
                long endNs) {
        this.queue = q.index();
        this.ring = q.ring();
        this.fds = q;
        this.eventIdx = eventIdx;
        this.busyPoll = o.busyPoll();
        this.depth = o.iodepth();
        this.bs = o.blockSize();
        this.mode = o.rw();
        this.readPercent = o.readPercent();
        this.verify = o.verify();
        this.pattern = new DataPattern(o.seed());
        this.writeData = o.data();
        this.seed = o.seed();
        this.written = verify && mode.writes() ? new WrittenBlocks(spanBlocks) : null;
        this.offsets = new OffsetSource(mode.random(), spanBlocks, queue, o.queues(), o.seed());
        this.startNs = startNs;
        this.endNs = endNs;
        this.stallNs = o.stallTimeout().toNanos();
        header = new MemorySegment[depth];
        data = new MemorySegment[depth];
        status = new MemorySegment[depth];
        dataGpa = new long[depth];
        submitNs = new long[depth];
        diskOffset = new long[depth];
        isRead = new boolean[depth];
        check = new boolean[depth];
        busy = new boolean[depth];
        for (int s = 0; s < depth; s++) {
            long h = ram.alloc(VirtioBlk.HEADER_BYTES, 16);
            long st = ram.alloc(1, 1);
            dataGpa[s] = ram.alloc(bs, 4096);
            header[s] = ram.at(h, VirtioBlk.HEADER_BYTES);
            status[s] = ram.at(st, 1);
            data[s] = ram.at(dataGpa[s], bs).fill((byte) 0);
            ring.setUpSlot(s, h, dataGpa[s], bs, st);
        }
        pollFd = Arena.ofAuto().allocate(Libc.POLLFD);
        pollFd.set(ValueLayout.JAVA_INT, 0, q.call().fd());
        pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
    }

    QueueStats stats() {
        return stats;
    }

    /** The exception that ended the run early, or null. */
    Throwable failure() {
        return failure;
    }

    /** Bytes this thread allocated during the measured interval (plus the final drain), or -1 when unknown. */
    long allocatedWhileMeasured() {
        return allocAtStart < 0 || allocAtEnd < 0 ? -1 : allocAtEnd - allocAtStart;
    }

    private long allocatedSoFar() {
        return threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled()
                ? threads.getCurrentThreadAllocatedBytes() : -1;
    }

    /** Stops issuing new requests; those in flight are still reaped. */
    void requestStop() {
        stopRequested = true;
    }

    @Override
    public void run() {
        try {
            if (busyPoll) {
                ring.callsOff(eventIdx);
            }
            drive();
            allocAtEnd = allocatedSoFar();
            if (written != null && !stopRequested) {
                phase = Phase.READ_BACK;
                drive();
            }
        } catch (BenchException | RuntimeException e) {
            failure = e;
        }
    }

    /** Keeps the queue full until the phase runs out of work, then reaps what is in flight. */
    private void drive() throws BenchException {
        int inFlight = 0;
        long now = System.nanoTime();
        for (int s = 0; s < depth && prepare(s, now); s++) {
            inFlight++;
        }
        publishAndKick();
        long lastProgress = now;
        while (inFlight > 0) {
            int reaped = 0;
            int refilled = 0;
            int s;
            while ((s = ring.reapSlot()) >= 0) {
                long t = System.nanoTime();
                claim(s);
                complete(s, t);
                reaped++;
                if (prepare(s, t)) {
                    refilled++;
                } else {
                    inFlight--;
                }
            }
            if (refilled > 0) {
                publishAndKick();
            }
            if (allocAtStart < 0 && phase == Phase.MAIN && reaped > 0 && System.nanoTime() >= startNs) {
                allocAtStart = allocatedSoFar();
            }
            if (reaped > 0) {
                lastProgress = System.nanoTime();
                if (busyPoll && eventIdx) {
                    ring.callsOff(true);
                }
                continue;
            }
            if (inFlight == 0) {
                break;
            }
            long idle = System.nanoTime() - lastProgress;
            if (idle > stallNs) {
                throw new BenchException("queue " + queue + ": no request completed for " + idle / 1_000_000
                        + " ms with " + inFlight + " in flight (back-end stalled?)");
            }
            awaitCompletion();
        }
    }

    /** Sets slot s up for its next request and offers it; false when the phase has no more work. */
    private boolean prepare(int s, long now) {
        boolean read;
        long block;
        boolean verifyThis;
        if (phase == Phase.MAIN) {
            if (now >= endNs || stopRequested) {
                return false;
            }
            block = offsets.next();
            read = switch (mode) {
                case READ, RANDREAD -> true;
                case WRITE, RANDWRITE -> false;
                case RANDRW -> offsets.chance(readPercent);
            };
            // A read is checked only where this run has written: elsewhere the disk holds whatever it held before.
            verifyThis = verify && (!read || written == null || written.marked(block));
        } else {
            block = written.next(readBackCursor);
            if (block < 0 || stopRequested) {
                return false;
            }
            readBackCursor = block + 1;
            read = true;
            verifyThis = true;
        }
        long off = block * bs;
        diskOffset[s] = off;
        isRead[s] = read;
        check[s] = verifyThis && read;
        MemorySegment h = header[s];
        h.set(U32, 0, read ? VirtioBlk.T_IN : VirtioBlk.T_OUT);
        h.set(U32, 4, 0);
        h.set(U64, 8, off >>> VirtioBlk.SECTOR_SHIFT);
        status[s].set(ValueLayout.JAVA_BYTE, 0, STATUS_UNSET);
        if (verifyThis) {
            if (read) {
                DataPattern.poison(data[s], bs);
            } else {
                pattern.fill(data[s], off, bs);
            }
        } else if (!read) {
            writeData.fill(data[s], bs, seed, queue, writesOffered++);
        }
        busy[s] = true;
        submitNs[s] = now;
        ring.offer(s, read);
        return true;
    }

    private void claim(int s) throws BenchException {
        if (s >= depth || !busy[s]) {
            throw new BenchException("queue " + queue + ": back-end completed slot " + s + ", which is not in flight");
        }
        busy[s] = false;
    }

    private void complete(int s, long t) {
        byte st = status[s].get(ValueLayout.JAVA_BYTE, 0);
        if (st != VirtioBlk.S_OK) {
            stats.errors++;
            if (stats.firstErrorStatus < 0) {
                stats.firstErrorStatus = st & 0xff;
            }
        } else if (check[s]) {
            stats.verifiedBlocks++;
            int bad = pattern.firstMismatch(data[s], diskOffset[s], bs);
            if (bad >= 0) {
                stats.verifyMismatches++;
                if (stats.firstMismatchOffset < 0) {
                    stats.firstMismatchOffset = diskOffset[s];
                    stats.firstMismatchByte = bad;
                }
            }
        } else if (written != null && !isRead[s]) {
            written.mark(diskOffset[s] / bs);
        }
        if (phase == Phase.MAIN && t >= startNs && t < endNs) {
            stats.latency.record(t - submitNs[s]);
            stats.ios++;
            stats.bytes += bs;
            if (isRead[s]) {
                stats.reads++;
            } else {
                stats.writes++;
            }
        }
    }

    private void publishAndKick() throws BenchException {
        ring.publish();
        if (ring.kickNeeded(eventIdx)) {
            int rc = fds.kick().signal();
            if (rc < 0) {
                throw new BenchException("queue " + queue + ": writing the kick eventfd failed (errno " + -rc + ")");
            }
        }
    }

    /** Sleeps on the call eventfd (after asking for a call and re-checking the ring), or spins once when polling. */
    private void awaitCompletion() throws BenchException {
        if (busyPoll) {
            Thread.onSpinWait();
            return;
        }
        if (ring.armCallAndCheck(eventIdx)) {
            return;
        }
        int rc = Libc.poll(pollFd, 1, CALL_POLL_MILLIS);
        if (rc < 0 && rc != -EINTR) {
            throw new BenchException("queue " + queue + ": poll on the call eventfd failed (errno " + -rc + ")");
        }
        if (rc > 0) {
            long n = fds.call().drain();
            if (n < 0 && n != -11) {
                throw new BenchException("queue " + queue + ": reading the call eventfd failed (errno " + -n + ")");
            }
        }
    }
}
