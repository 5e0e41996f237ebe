package io.vhostblk.drivers;

import io.vhostblk.linux.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Fault injection around another driver, for tests and benchmarks ({@code serve --inject SPEC}):
 * added latency, EIO on ranges or the N-th request, ENOSPC after N bytes, short transfers, and a
 * power cut that loses every write no completed flush covered. It passes requests to the driver
 * beneath and changes only results and timing; it never reads a request's buffers. The power cut
 * reads the old data of each write into buffers of its own before the write goes down, and writes
 * it back when the driver closes.
 */
public final class FaultyDriver implements BlockDriver {
    private static final System.Logger LOG = System.getLogger(FaultyDriver.class.getName());

    private final BlockDriver inner;
    private final FaultSpec spec;
    private final String id;
    private final FaultCounters counters = new FaultCounters();
    /** Device-wide request count, for eio-nth. */
    final AtomicLong requests = new AtomicLong();
    /** Bytes written so far, for enospc-after. */
    final AtomicLong bytesWritten = new AtomicLong();
    /** Writes submitted so far, for power-cut=N. */
    final AtomicLong writesSubmitted = new AtomicLong();
    /** Order of write completions; a flush makes everything up to its snapshot durable. */
    final AtomicLong writeCompletions = new AtomicLong();
    /** The highest write-completion number a completed flush covers. */
    final AtomicLong durableThrough = new AtomicLong();
    /** Order of undo captures, so the roll-back runs newest first across queues. */
    final AtomicLong undoOrder = new AtomicLong();
    final AtomicBoolean cut = new AtomicBoolean();
    /** Undo records handed over by closed queues. */
    private final ConcurrentLinkedQueue<FaultyQueue.Undo> undoLog = new ConcurrentLinkedQueue<>();

    private FaultyDriver(BlockDriver inner, FaultSpec spec, String id) {
        this.inner = inner;
        this.spec = spec;
        this.id = id;
    }

    /** Wraps {@code inner}; {@code id} names the device in logs. Closing this closes {@code inner}. */
    public static FaultyDriver wrap(BlockDriver inner, FaultSpec spec, String id) {
        LOG.log(System.Logger.Level.WARNING, "device=" + id + ": fault injection on " + inner.kind() + " " + inner.target()
                + ": " + describe(spec));
        return new FaultyDriver(inner, spec, id);
    }

    FaultSpec spec() {
        return spec;
    }

    String id() {
        return id;
    }

    /** What has been injected so far. */
    public FaultCounters counters() {
        return counters;
    }

    /** The counters of {@code driver} when it injects faults, else null. */
    public static FaultCounters countersOf(BlockDriver driver) {
        return driver instanceof FaultyDriver f ? f.counters : null;
    }

    @Override
    public String kind() {
        return "faulty";
    }

    @Override
    public String target() {
        return inner.kind() + " " + inner.target();
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
        return new FaultyQueue(this, queueIndex, completion, inner);
    }

    /** The power is cut now: from here on every request fails with EIO. */
    public void cutPower() {
        if (spec.powerCut() && cut.compareAndSet(false, true)) {
            LOG.log(System.Logger.Level.WARNING, "device=" + id + ": power cut: every request fails with EIO from now on; "
                    + "unflushed writes are rolled back when the driver closes");
        }
    }

    void handOver(List<FaultyQueue.Undo> records) {
        undoLog.addAll(records);
    }

    @Override
    public void sync() throws DriverException {
        inner.sync();
    }

    /** With power-cut: puts back the old data of every write no completed flush covered, then closes the driver beneath. */
    @Override
    public void close() {
        try {
            if (spec.powerCut()) {
                rollBack();
            }
        } finally {
            inner.close();
        }
    }

    private void rollBack() {
        long durable = durableThrough.get();
        SplittableRandom random = spec.reorderSeed() >= 0 ? new SplittableRandom(spec.reorderSeed()) : null;
        List<FaultyQueue.Undo> lost = new ArrayList<>();
        for (FaultyQueue.Undo u : undoLog) {
            boolean acknowledged = u.completedAs > 0 && u.completedAs <= durable;
            // A completed but unflushed write may have reached the medium anyway (a volatile cache
            // writes back in any order); one never completed may too, but keeping it helps nothing.
            boolean survives = !acknowledged && random != null && u.completedAs > 0 && random.nextBoolean();
            if (!acknowledged && !survives) {
                lost.add(u);
            } else if (survives) {
                counters.keptAtPowerCut.incrementAndGet();
            }
        }
        lost.sort(Comparator.comparingLong((FaultyQueue.Undo u) -> u.order).reversed());
        LOG.log(System.Logger.Level.WARNING, "device=" + id + ": power cut: rolling back " + lost.size() + " unflushed writes of "
                + undoLog.size() + " recorded");
        try (Arena arena = Arena.ofConfined()) {
            long[] result = {0};
            int[] done = {0};
            DriverQueue q = inner.openQueue(0, (r, res) -> {
                result[0] = res;
                done[0]++;
            });
            try {
                MemorySegment pollFd = arena.allocate(Libc.POLLFD);
                BlockRequest w = new BlockRequest(0, id, 0);
                for (FaultyQueue.Undo u : lost) {
                    int before = done[0];
                    q.submit(w.set(BlockOp.WRITE, u.offset, u.length, IoVector.over(u.oldData.asSlice(0, u.length), false), false));
                    q.flushBatch();
                    while (done[0] == before) {
                        if (q.reap() == 0 && q.completionFd() >= 0) {
                            pollFd.set(ValueLayout.JAVA_INT, 0, q.completionFd());
                            pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
                            Libc.poll(pollFd, 1, 100);
                        }
                    }
                    if (result[0] != u.length) {
                        LOG.log(System.Logger.Level.ERROR, "device=" + id + ": power cut: rolling back " + u.length + " bytes at "
                                + u.offset + " failed: " + result[0]);
                    }
                    counters.droppedAtPowerCut.incrementAndGet();
                }
            } finally {
                q.close();
            }
            inner.sync();
        } catch (DriverException e) {
            LOG.log(System.Logger.Level.ERROR, "device=" + id + ": power cut: cannot roll back unflushed writes", e);
        }
    }

    private static String describe(FaultSpec s) {
        StringBuilder b = new StringBuilder();
        if (s.latencyNanos() > 0) {
            b.append(" latency ").append(s.latencyNanos()).append(" ns");
        }
        for (long[] r : s.eioRanges()) {
            b.append(" EIO on bytes ").append(r[0]).append('-').append(r[1]);
        }
        if (s.eioNth() > 0) {
            b.append(" EIO on request #").append(s.eioNth());
        }
        if (s.enospcAfter() >= 0) {
            b.append(" ENOSPC after ").append(s.enospcAfter()).append(" bytes");
        }
        if (s.shortEvery() > 0) {
            b.append(" short transfer every ").append(s.shortEvery()).append(" reads/writes");
        }
        if (s.powerCut()) {
            b.append(" power cut").append(s.powerCutAfter() > 0 ? " after " + s.powerCutAfter() + " writes" : " at close")
                    .append(s.reorderSeed() >= 0 ? ", unflushed writes kept at random (seed " + s.reorderSeed() + ")" : "");
        }
        return b.isEmpty() ? "none" : b.toString().trim();
    }
}
