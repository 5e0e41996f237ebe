package io.vhostblk.bench;

import io.vhostblk.hooks.LatencyHistogram;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;

/**
 * One bench run: sets the device up, starts a {@link QueueWorker} thread per queue, samples CPU
 * time at the start and end of the measured interval (after the ramp), waits for the workers to
 * drain (and read back, with --verify) and merges what they saw into a {@link BenchReport}.
 */
public final class BenchJob {
    private static final System.Logger LOG = System.getLogger(BenchJob.class.getName());
    private static final long SLICE_NANOS = 50_000_000;
    private static final long MIB = 1 << 20;

    private final BenchOptions options;

    public BenchJob(BenchOptions options) {
        this.options = options;
    }

    /** Guest RAM for the rings and request buffers of every queue, with slack, in 2 MiB units. */
    static long ramBytes(BenchOptions o) {
        long ring = 16L * o.ringSize() + 6 + 2L * o.ringSize() + 6 + 8L * o.ringSize() + 64;
        long slot = ((o.blockSize() + 4095L) & -4096L) + 64;
        long total = o.queues() * (ring + o.iodepth() * slot) + (1L << 20);
        return (total + (2 * MIB - 1)) & -(2 * MIB);
    }

    /** Runs the job; the report says whether every request succeeded. */
    public BenchReport run() throws BenchException {
        BenchOptions o = options;
        ProcessCpu backend = o.pid() > 0 ? ProcessCpu.of(o.pid()) : null;
        ProcessCpu self = ProcessCpu.self();
        try (DeviceSession dev = DeviceSession.open(o, ramBytes(o))) {
            long capacity = dev.capacityBytes();
            long span = o.size() == 0 ? capacity / o.blockSize() * o.blockSize() : o.size();
            if (span < o.blockSize() || span > capacity) {
                throw new BenchException("span of " + span + " bytes does not fit a " + capacity
                        + "-byte device with --bs " + o.blockSize());
            }
            if (dev.readOnly() && o.rw().writes()) {
                LOG.log(Level.WARNING, "the device at {0} is read-only (VIRTIO_BLK_F_RO): its writes will fail",
                        o.socket());
            }
            long t0 = System.nanoTime();
            long start = t0 + o.ramp().toNanos();
            long end = start + o.runtime().toNanos();
            List<QueueWorker> workers = new ArrayList<>();
            for (QueueRing q : dev.rings()) {
                workers.add(new QueueWorker(q, dev.ram(), o, dev.eventIdx(), span / o.blockSize(), start, end));
            }
            List<Thread> threads = new ArrayList<>();
            for (QueueWorker w : workers) {
                threads.add(Thread.ofPlatform().name("bench-q" + threads.size()).unstarted(w));
            }
            threads.forEach(Thread::start);
            try {
                sleepUntil(start, workers);
                long backendCpu0 = backend == null ? 0 : backend.nanos();
                long selfCpu0 = self.nanos();
                long wall0 = System.nanoTime();
                sleepUntil(end, workers);
                long backendCpu1 = backend == null ? 0 : backend.nanos();
                long selfCpu1 = self.nanos();
                long wall1 = System.nanoTime();
                for (Thread t : threads) {
                    t.join();
                }
                QueueStats total = new QueueStats();
                for (QueueWorker w : workers) {
                    if (w.failure() != null) {
                        throw new BenchException(w.failure().getMessage(), w.failure());
                    }
                    total.add(w.stats());
                }
                double seconds = (end - start) / 1e9;
                double wall = (wall1 - wall0) / 1e9;
                long ios = total.ios;
                double backendUs = backend == null || ios == 0 ? Double.NaN : (backendCpu1 - backendCpu0) / 1e3 / ios;
                double backendPct = backend == null ? Double.NaN : (backendCpu1 - backendCpu0) / 1e7 / wall;
                double selfUs = ios == 0 ? Double.NaN : (selfCpu1 - selfCpu0) / 1e3 / ios;
                double selfPct = (selfCpu1 - selfCpu0) / 1e7 / wall;
                long alloc = 0;
                for (QueueWorker w : workers) {
                    alloc = alloc < 0 || w.allocatedWhileMeasured() < 0 ? -1 : alloc + w.allocatedWhileMeasured();
                }
                double allocPerIo = ios == 0 || alloc < 0 ? Double.NaN : (double) alloc / ios;
                double idleSeconds = Double.NaN;
                double idlePct = Double.NaN;
                if (backend != null && !o.idle().isZero()) {
                    // Workers are done and nothing is in flight, but the session and its started
                    // queues stay: what an idle guest's disk costs the back-end.
                    long idle0 = backend.nanos();
                    long idleWall0 = System.nanoTime();
                    Thread.sleep(o.idle().toMillis());
                    long idleWall = System.nanoTime() - idleWall0;
                    idleSeconds = idleWall / 1e9;
                    idlePct = (backend.nanos() - idle0) * 100.0 / idleWall;
                }
                LatencyHistogram lat = total.latency;
                return new BenchReport(o.socket().toString(), o.rw().fioName(), o.blockSize(), o.iodepth(), o.queues(),
                        dev.eventIdx(), o.busyPoll(), capacity, span, seconds, ios, total.reads, total.writes,
                        total.bytes, ios / seconds, total.bytes / (double) MIB / seconds, lat.mean() / 1e3,
                        lat.percentile(50) / 1e3, lat.percentile(99) / 1e3, lat.percentile(99.9) / 1e3,
                        lat.max() / 1e3, total.errors, total.firstErrorStatus, o.verify(), total.verifiedBlocks,
                        total.verifyMismatches, total.firstMismatchOffset, o.pid(), backendUs, backendPct, selfUs,
                        selfPct, allocPerIo, idleSeconds, idlePct);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BenchException("interrupted", e);
            } finally {
                stopAndJoin(workers, threads);
            }
        }
    }

    /** Sleeps until the deadline, returning early with the failure of any worker that ended in error. */
    private static void sleepUntil(long deadline, List<QueueWorker> workers) throws InterruptedException, BenchException {
        while (true) {
            for (QueueWorker w : workers) {
                if (w.failure() != null) {
                    throw new BenchException(w.failure().getMessage(), w.failure());
                }
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            Thread.sleep(Math.min(left, SLICE_NANOS) / 1_000_000, (int) (Math.min(left, SLICE_NANOS) % 1_000_000));
        }
    }

    /** On any exit path: no worker may outlive the device session (its rings are about to be unmapped). */
    private static void stopAndJoin(List<QueueWorker> workers, List<Thread> threads) {
        workers.forEach(QueueWorker::requestStop);
        boolean interrupted = false;
        for (Thread t : threads) {
            while (t.isAlive()) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
