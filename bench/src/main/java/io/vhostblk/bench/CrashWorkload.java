package io.vhostblk.bench;

import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.SplitRingDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The crash campaign's load: random block writes whose data encodes the block's offset and a
 * generation, with a FLUSH every few requests, over one virtqueue of a vhost-user-blk device. It
 * remembers, per block, the newest generation issued, acknowledged, and acknowledged before a
 * completed flush (durable), across server restarts, so {@link #verify} can check the crash
 * contract: every sector of a block holds that block's offset and a generation between its durable
 * and its newest one; never another block's data, garbage, or an older generation.
 */
public final class CrashWorkload {
    /** Each 16-byte unit of a sector: the block offset marked with this, and the generation. */
    private static final long MARK = 0x6372_6173_6800_0000L;
    private static final int SECTOR = VirtioBlk.SECTOR_SIZE;
    private static final ValueLayout.OfLong U64 = SplitRingDriver.U64;
    private static final byte STATUS_UNSET = (byte) 0xff;
    private static final int STALL_MILLIS = 30_000;

    private final int blocks;
    private final int blockSize;
    private final int depth;
    private final int flushEvery;
    private final SplittableRandom random;
    private final long[] issued;
    private final long[] acked;
    private final long[] durable;
    private long ackedWrites;
    private long completedFlushes;

    /**
     * @param blocks     blocks of {@code blockSize} bytes from the device's start that the load writes
     * @param depth      requests kept in flight
     * @param flushEvery one request in this many is a FLUSH
     */
    public CrashWorkload(int blocks, int blockSize, int depth, int flushEvery, long seed) {
        if (blockSize % SECTOR != 0 || blocks < depth || depth < 2 || flushEvery < 2) {
            throw new IllegalArgumentException("blocks " + blocks + ", block size " + blockSize + ", depth " + depth
                    + ", flush every " + flushEvery);
        }
        this.blocks = blocks;
        this.blockSize = blockSize;
        this.depth = depth;
        this.flushEvery = flushEvery;
        this.random = new SplittableRandom(seed);
        this.issued = new long[blocks];
        this.acked = new long[blocks];
        this.durable = new long[blocks];
    }

    /** Writes acknowledged so far, over every run. */
    public long ackedWrites() {
        return ackedWrites;
    }

    /** Flushes completed so far, over every run. */
    public long completedFlushes() {
        return completedFlushes;
    }

    /**
     * Connects to the device: one connection serves a server's whole life (vhost-user back-ends
     * serve one front-end at a time, and a hang-up is noticed only later).
     */
    public Run connect(Path socket) throws BenchException {
        return new Run(socket);
    }

    /** Sets what the load knows of a block (tests of {@link #checkSector}). */
    void know(int block, long durableGeneration, long issuedGeneration) {
        durable[block] = durableGeneration;
        acked[block] = durableGeneration;
        issued[block] = issuedGeneration;
    }

    /** Fills a block as the load writes it (tests of {@link #checkSector}). */
    void fill(MemorySegment data, int block, long generation) {
        fillBlock(data, block, generation);
    }

    /** What one sector holds, against what the block may hold; null when it is allowed. */
    String checkSector(int block, MemorySegment data, int sectorOffset) {
        long offset = (long) block * blockSize;
        long unitOffset = data.get(U64, sectorOffset);
        long generation = data.get(U64, sectorOffset + 8);
        for (int u = 16; u < SECTOR; u += 16) {
            if (data.get(U64, sectorOffset + u) != unitOffset || data.get(U64, sectorOffset + u + 8) != generation) {
                return "block " + block + " sector " + sectorOffset / SECTOR + ": mixed or garbage data at byte " + u;
            }
        }
        if (unitOffset == 0 && generation == 0) {
            return durable[block] == 0 ? null : "block " + block + " sector " + sectorOffset / SECTOR
                    + ": zeros, but generation " + durable[block] + " was acknowledged before a completed flush";
        }
        if (unitOffset != (offset ^ MARK)) {
            return "block " + block + " sector " + sectorOffset / SECTOR + ": data of byte offset " + (unitOffset ^ MARK);
        }
        if (generation < durable[block] || generation > issued[block]) {
            return "block " + block + " sector " + sectorOffset / SECTOR + ": generation " + generation + ", expected "
                    + durable[block] + ".." + issued[block] + " (flushed..newest issued; newest acknowledged " + acked[block] + ")";
        }
        return null;
    }

    private void fillBlock(MemorySegment data, int block, long generation) {
        long mark = ((long) block * blockSize) ^ MARK;
        for (int u = 0; u < blockSize; u += 16) {
            data.set(U64, u, mark);
            data.set(U64, u + 8, generation);
        }
    }

    /** One connection's worth of the load; closing it hangs up without waiting for anything in flight. */
    public final class Run implements AutoCloseable {
        private final DeviceSession session;
        private final QueueRing queue;
        private final SplitRingDriver ring;
        private final boolean eventIdx;
        private final MemorySegment[] header;
        private final MemorySegment[] data;
        private final MemorySegment[] status;
        private final long[] headerGpa;
        private final long[] dataGpa;
        private final long[] statusGpa;
        /** Per slot: the block written (or -1 for a flush, -2 when free), its generation, the acked snapshot of a flush. */
        private final int[] slotBlock;
        private final long[] slotGeneration;
        private final long[][] flushSnapshot;
        private final boolean[] blockBusy;
        private final MemorySegment pollFd;
        private int inFlight;
        private boolean flushInFlight;
        private int usedSeen;
        private long issuedRequests;
        private int prefillCursor;
        private String stopReason;

        private Run(Path socket) throws BenchException {
            BenchOptions o;
            try {
                o = BenchOptions.parse(List.of("--socket", socket.toString(), "--iodepth", Integer.toString(depth),
                        "--bs", Integer.toString(blockSize)));
            } catch (BenchUsageException e) {
                throw new BenchException("crash workload: " + e.getMessage(), e);
            }
            session = DeviceSession.open(o, (long) depth * (blockSize + 4096) * 2 + (4L << 20));
            if (session.capacityBytes() < (long) blocks * blockSize) {
                session.close();
                throw new BenchException("crash workload: the device has " + session.capacityBytes() + " bytes, the load needs "
                        + (long) blocks * blockSize);
            }
            queue = session.rings().get(0);
            ring = ((SplitBenchRing) queue.ring()).driver();
            eventIdx = session.eventIdx();
            header = new MemorySegment[depth];
            data = new MemorySegment[depth];
            status = new MemorySegment[depth];
            headerGpa = new long[depth];
            dataGpa = new long[depth];
            statusGpa = new long[depth];
            slotBlock = new int[depth];
            slotGeneration = new long[depth];
            flushSnapshot = new long[depth][];
            blockBusy = new boolean[blocks];
            for (int s = 0; s < depth; s++) {
                headerGpa[s] = session.ram().alloc(VirtioBlk.HEADER_BYTES, 16);
                dataGpa[s] = session.ram().alloc(blockSize, 4096);
                statusGpa[s] = session.ram().alloc(1, 1);
                header[s] = session.ram().at(headerGpa[s], VirtioBlk.HEADER_BYTES);
                data[s] = session.ram().at(dataGpa[s], blockSize);
                status[s] = session.ram().at(statusGpa[s], 1);
                slotBlock[s] = -2;
            }
            pollFd = Arena.ofAuto().allocate(Libc.POLLFD);
            pollFd.set(ValueLayout.JAVA_INT, 0, queue.call().fd());
            pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
        }

        /** Writes generation 1 to every block and flushes: the known state a campaign starts from. */
        public void prefill() throws BenchException {
            drive(blocks, true);
            drain();
            submitFlush(freeSlot());
            kick();
            drain();
        }

        /**
         * Reads every block and returns each violation of the crash contract found; after a crash,
         * call this before {@link #run}, which builds on what it read.
         */
        public List<String> verify() throws BenchException {
            List<String> violations = new ArrayList<>();
            readAll(violations);
            return violations;
        }

        /**
         * Keeps the queue full of random writes and flushes until {@code requests} have completed,
         * then returns with up to depth requests still in flight: the caller crashes the server now.
         * Returns the reason it stopped early (the device failed a request or stopped answering), or null.
         */
        public String run(long requests) throws BenchException {
            drive(requests, false);
            return stopReason;
        }

        /** Issues requests until {@code count} have completed (prefill: block by block, in order). */
        private void drive(long count, boolean prefill) throws BenchException {
            long completed = 0;
            long issuedHere = 0;
            while (completed < count && stopReason == null) {
                while (inFlight < depth && issuedHere < count) {
                    int s = freeSlot();
                    if (prefill) {
                        submitWrite(s, prefillCursor++);
                    } else if (!submitRandom(s)) {
                        break;
                    }
                    issuedHere++;
                }
                kick();
                completed += reap();
            }
        }

        /** Waits for everything in flight. */
        private void drain() throws BenchException {
            while (inFlight > 0 && stopReason == null) {
                reap();
            }
            if (stopReason != null) {
                throw new BenchException("crash workload: " + stopReason);
            }
        }

        private int freeSlot() {
            for (int s = 0; s < depth; s++) {
                if (slotBlock[s] == -2) {
                    return s;
                }
            }
            throw new IllegalStateException("no free slot with " + inFlight + " in flight");
        }

        private boolean submitRandom(int s) {
            issuedRequests++;
            if (issuedRequests % flushEvery == 0 && !flushInFlight) {
                submitFlush(s);
                return true;
            }
            for (int tries = 0; tries < 4 * blocks; tries++) {
                int b = random.nextInt(blocks);
                if (!blockBusy[b]) {
                    submitWrite(s, b);
                    return true;
                }
            }
            return false;
        }

        private void submitWrite(int s, int block) {
            long generation = ++issued[block];
            fillBlock(data[s], block, generation);
            slotBlock[s] = block;
            slotGeneration[s] = generation;
            blockBusy[block] = true;
            offer(s, VirtioBlk.T_OUT, (long) block * blockSize, true, false);
        }

        private void submitFlush(int s) {
            slotBlock[s] = -1;
            flushSnapshot[s] = acked.clone();
            flushInFlight = true;
            offer(s, VirtioBlk.T_FLUSH, 0, false, false);
        }

        private void submitRead(int s, int block) {
            slotBlock[s] = block;
            slotGeneration[s] = -1;
            data[s].fill((byte) 0x5a);
            offer(s, VirtioBlk.T_IN, (long) block * blockSize, true, true);
        }

        private void offer(int s, int type, long offset, boolean withData, boolean dataWritable) {
            header[s].set(SplitRingDriver.U32, 0, type);
            header[s].set(SplitRingDriver.U32, 4, 0);
            header[s].set(U64, 8, offset / SECTOR);
            status[s].set(ValueLayout.JAVA_BYTE, 0, STATUS_UNSET);
            int d = 3 * s;
            ring.writeDescriptor(d, headerGpa[s], VirtioBlk.HEADER_BYTES, SplitVirtqueue.DESC_F_NEXT, withData ? d + 1 : d + 2);
            ring.writeDescriptor(d + 1, dataGpa[s], blockSize,
                    SplitVirtqueue.DESC_F_NEXT | (dataWritable ? SplitVirtqueue.DESC_F_WRITE : 0), d + 2);
            ring.writeDescriptor(d + 2, statusGpa[s], 1, SplitVirtqueue.DESC_F_WRITE, 0);
            ring.offer(d);
            inFlight++;
        }

        private void kick() throws BenchException {
            ring.publish();
            if (ring.kickNeeded(eventIdx) && queue.kick().signal() < 0) {
                stopReason = "the kick eventfd cannot be written";
            }
        }

        /** Reaps what has completed, waiting (bounded) when nothing has; returns how many. */
        private int reap() throws BenchException {
            int n = 0;
            int id;
            while ((id = ring.reapUsed()) >= 0) {
                usedSeen = (usedSeen + 1) & 0xffff;
                complete(id / 3);
                n++;
            }
            if (n == 0 && stopReason == null) {
                await();
            }
            return n;
        }

        private void complete(int s) {
            byte st = status[s].get(ValueLayout.JAVA_BYTE, 0);
            int block = slotBlock[s];
            slotBlock[s] = -2;
            inFlight--;
            if (block == -1) {
                flushInFlight = false;
                if (st == VirtioBlk.S_OK) {
                    completedFlushes++;
                    long[] snapshot = flushSnapshot[s];
                    for (int b = 0; b < blocks; b++) {
                        durable[b] = Math.max(durable[b], snapshot[b]);
                    }
                }
            } else if (slotGeneration[s] > 0) {
                blockBusy[block] = false;
                if (st == VirtioBlk.S_OK) {
                    ackedWrites++;
                    acked[block] = Math.max(acked[block], slotGeneration[s]);
                }
            }
            if (st != VirtioBlk.S_OK && stopReason == null) {
                stopReason = "the device answered status " + (st & 0xff) + " to a " + (block == -1 ? "flush" : "request on block " + block);
            }
        }

        private void await() throws BenchException {
            if (eventIdx) {
                ring.setUsedEvent(usedSeen);
            }
            VarHandle.fullFence();
            if (ring.usedIdx() != usedSeen) {
                return;
            }
            int rc = Libc.poll(pollFd, 1, STALL_MILLIS);
            if (rc == 0) {
                stopReason = "no request completed within " + STALL_MILLIS / 1000 + " s with " + inFlight + " in flight";
            } else if (rc > 0) {
                queue.call().drain();
            }
        }

        private void readAll(List<String> violations) throws BenchException {
            int next = 0;
            while ((next < blocks || inFlight > 0) && stopReason == null) {
                while (inFlight < depth && next < blocks) {
                    submitRead(freeSlot(), next++);
                }
                kick();
                int id;
                boolean any = false;
                while ((id = ring.reapUsed()) >= 0) {
                    usedSeen = (usedSeen + 1) & 0xffff;
                    any = true;
                    int s = id / 3;
                    int block = slotBlock[s];
                    slotBlock[s] = -2;
                    inFlight--;
                    byte st = status[s].get(ValueLayout.JAVA_BYTE, 0);
                    if (st != VirtioBlk.S_OK) {
                        violations.add("block " + block + ": the read failed with status " + (st & 0xff));
                        continue;
                    }
                    long oldest = Long.MAX_VALUE;
                    for (int off = 0; off < blockSize; off += SECTOR) {
                        String v = checkSector(block, data[s], off);
                        if (v != null) {
                            violations.add(v);
                            oldest = durable[block];
                            break;
                        }
                        oldest = Math.min(oldest, data[s].get(U64, off + 8));
                    }
                    // What the crash left is what the next flush makes durable: an acknowledged
                    // write the crash lost must not count as acknowledged any more.
                    acked[block] = Math.max(durable[block], oldest);
                }
                if (!any) {
                    await();
                }
            }
            if (stopReason != null) {
                throw new BenchException("crash workload: verifying: " + stopReason);
            }
        }

        /** Hangs up without waiting for requests in flight (the server is gone, or about to be). */
        @Override
        public void close() {
            session.abandon();
        }
    }

    @Override
    public String toString() {
        return "crash workload over " + blocks + " blocks of " + blockSize + " bytes: " + ackedWrites + " writes acknowledged, "
                + completedFlushes + " flushes completed, newest generations " + Arrays.stream(issued).max().orElse(0);
    }
}
