package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * The cache of one device, run on one event loop (the owner queue's): guest requests as {@link Job}s, cache slots
 * with their S3-FIFO policy, background write-back and the commits that make the slot table durable.
 *
 * <p>Consistency: every job holds a lock on the blocks it touches (a range, checked against the other jobs and
 * write-backs in progress), so a fill never races a write of the same block and a write-back never races a write
 * below. Only dirty slots have entries in the on-disk slot table; an entry is written (at a commit) only after its
 * data was flushed on the cache device, and a slot whose old entry may still be on disk is not reused until a
 * commit cleared it. See docs/cache.md.
 */
final class CacheEngine {

    private static final System.Logger LOG = System.getLogger(CacheEngine.class.getName());

    /** How writes are handled. */
    enum Mode {
        WRITE_THROUGH("write-through"), WRITE_BACK("write-back"), WRITE_AROUND("write-around");

        final String word;

        Mode(String word) {
            this.word = word;
        }
    }

    /** Jobs in progress at once; more requests wait in order. */
    static final int JOBS = 32;
    /** Bytes a job moves at once; larger requests are served in chunks. */
    static final int CHUNK_BYTES = 128 * 1024;
    /** Write-backs in progress at once. */
    static final int WRITEBACK_DEPTH = 8;

    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final byte HIT_CLEAN = 1;
    private static final byte HIT_DIRTY = 2;
    private static final byte FILL = 3;
    private static final byte NO_FILL = 4;

    final CacheHeader header;
    /**
     * The mode new writes take. A write-back cache switches to write-through while it drains before a detach
     * ({@link #writeThrough}), so no new dirty block appears; set on the loop, read by other queues' hooks.
     */
    volatile Mode mode;
    /** Whether the cache was attached as a write-back cache: it may hold dirty blocks and commits its table. */
    final boolean writeBackCache;
    final String label;
    private final int bs;
    private final int slots;
    private final int chunkBlocks;
    private final long writebackBlocksPerTick;
    private Store cache;
    private Store below;
    private final Arena arena = Arena.ofShared();

    // Slot state, indexed by slot.
    private final long[] blockOf;
    private final boolean[] dirty;
    private final boolean[] busy;
    /** A non-empty entry for this slot may be on the cache device: the slot must not hold another block yet. */
    private final boolean[] onDisk;
    private final BlockTable map;
    private final S3Fifo policy;
    private final int[] free;
    private int freeCount;
    /** Freed slots whose on-disk entry is not cleared yet. */
    private final int[] limbo;
    private int limboCount;
    private int dirtyCount;

    // The slot table: its image in memory (written to the device at commits) and which pages changed.
    private final MemorySegment table;
    private final int pages;
    private final boolean[] pageChanged;
    private final int[] changedPages;
    private int changedCount;
    private final int[] committing;
    private int committingCount;
    private final SlotEntry entries = new SlotEntry();
    private long commitSeq;
    private boolean commitRunning;
    private boolean belowChanged;
    private boolean belowChangedInCommit;
    private final ArrayDeque<Job> flushNext = new ArrayDeque<>();
    /** FLUSHes the running commit answers; swapped with {@link #flushAnswered} when it ends. */
    private ArrayDeque<Job> flushCurrent = new ArrayDeque<>();
    private ArrayDeque<Job> flushAnswered = new ArrayDeque<>();
    private int commitStep;
    private int commitPending;
    private int commitError;

    // Jobs.
    private final ArrayDeque<Job> freeJobs = new ArrayDeque<>();
    private final Job[] jobs = new Job[JOBS];
    private final ArrayDeque<BlockRequest> waiting = new ArrayDeque<>();
    private final ArrayDeque<Origin> waitingFrom = new ArrayDeque<>();
    /** Jobs waiting for a block lock or for free slots, in arrival order. */
    private final ArrayDeque<Job> parked = new ArrayDeque<>();
    private boolean retrying;
    private boolean retryAgain;

    // Write-back.
    private final Writeback[] writebacks = new Writeback[WRITEBACK_DEPTH];
    private final long[] order;
    private int orderCount;
    private int orderNext;
    private boolean draining;
    private java.util.function.IntConsumer drained;
    /** Write-back errors counted when the drain began: a new one fails the drain. */
    private long drainErrorsAtStart;
    /** Writes issued in write-back mode and not yet finished: each may still make a block dirty. */
    private int writeBackWrites;
    private int jobsSinceTick;

    // Counters (plain fields, written on the loop; report() reads them a moment old).
    long hits;
    long misses;
    long evictions;
    long writtenBackBytes;
    long writebackErrors;
    long commits;
    long fills;
    volatile long writebackRate;
    private long rateWindowStart = System.nanoTime();
    private long rateWindowBytes;

    /** Whoever gets a guest request's result: its queue's hook. */
    interface Origin {
        void finish(BlockRequest r, long result);
    }

    /**
     * A cache over {@code header}'s geometry whose recovered slot table is {@code recovered} (the table's bytes as
     * read from the device, or null for a freshly formatted one).
     */
    CacheEngine(CacheHeader header, byte[] recovered, Mode mode, long writebackBytesPerSecond, String label) {
        this.header = header;
        this.mode = mode;
        this.writeBackCache = mode == Mode.WRITE_BACK;
        this.label = label;
        this.bs = header.blockSize();
        this.slots = (int) header.slots();
        this.chunkBlocks = Math.max(1, CHUNK_BYTES / bs);
        this.writebackBlocksPerTick = Math.max(1, writebackBytesPerSecond / 100 / bs);
        blockOf = new long[slots];
        dirty = new boolean[slots];
        busy = new boolean[slots];
        onDisk = new boolean[slots];
        map = new BlockTable(slots);
        policy = new S3Fifo(slots);
        free = new int[slots];
        limbo = new int[slots];
        order = new long[slots];
        Arrays.fill(blockOf, -1);
        table = arena.allocate(header.metadataBytes(), 4096);
        pages = (int) (header.metadataBytes() / 4096);
        pageChanged = new boolean[pages];
        changedPages = new int[pages];
        committing = new int[pages];
        for (int i = 0; i < JOBS; i++) {
            jobs[i] = new Job(arena.allocate((long) chunkBlocks * bs, 4096));
            freeJobs.add(jobs[i]);
        }
        for (int i = 0; i < WRITEBACK_DEPTH; i++) {
            writebacks[i] = new Writeback(arena.allocate(bs, 4096));
        }
        recover(recovered);
    }

    /** Rebuilds the slots from the table read at open: dirty blocks resident, stale entries cleared at the next commit. */
    private void recover(byte[] raw) {
        if (raw != null) {
            MemorySegment.copy(raw, 0, table, ValueLayout.JAVA_BYTE, 0, Math.min(raw.length, (int) table.byteSize()));
        }
        SlotTable found = SlotTable.recover(header, raw);
        for (int s = 0; s < slots; s++) {
            long b = found.dirtyBlock()[s];
            if (b >= 0) {
                onDisk[s] = true;
                install(s, b);
                dirty[s] = true;
                dirtyCount++;
            } else if (found.stale()[s]) {
                onDisk[s] = true;
                changed(s);
            }
        }
        commitSeq = found.nextSeq();
        for (int s = slots - 1; s >= 0; s--) {
            if (blockOf[s] < 0) {
                if (onDisk[s]) {
                    limbo[limboCount++] = s;
                } else {
                    free[freeCount++] = s;
                }
            }
        }
    }

    /** The stores to serve with, on the owner loop before the first request. */
    void serveOn(Store cacheDevice, Store layersBelow) {
        this.cache = cacheDevice;
        this.below = layersBelow;
    }

    int dirtyBlocks() {
        return dirtyCount;
    }

    int residentBlocks() {
        return policy.resident();
    }

    int slots() {
        return slots;
    }

    // ---------------------------------------------------------------- requests

    /** Serves a guest request the hook took over; the result goes to {@code from}. On the owner loop. */
    void serve(BlockRequest r, Origin from) {
        jobsSinceTick++;
        Job j = freeJobs.poll();
        if (j == null) {
            waiting.add(r);
            waitingFrom.add(from);
            return;
        }
        j.start(r, from);
    }

    private void release(Job j) {
        BlockRequest next = waiting.poll();
        if (next == null) {
            freeJobs.push(j);
        } else {
            j.start(next, waitingFrom.poll());
        }
    }

    /** Whether a job or write-back other than {@code self} holds a block of {@code [b0, b0 + n)}. */
    private boolean locked(long b0, long n, Object self) {
        for (Job j : jobs) {
            if (j != self && j.holds && j.b0 < b0 + n && b0 < j.b0 + j.n) {
                return true;
            }
        }
        for (Writeback w : writebacks) {
            if (w != self && w.slot >= 0 && w.block >= b0 && w.block < b0 + n) {
                return true;
            }
        }
        return false;
    }

    /** Gives parked jobs another try (a lock or slots were released), in arrival order. */
    private void retryParked() {
        if (retrying) {
            retryAgain = true; // a release during the round: the round runs once more
            return;
        }
        retrying = true;
        try {
            do {
                retryAgain = false;
                for (int i = parked.size(); i > 0; i--) {
                    parked.poll().chunk();
                }
            } while (retryAgain && !parked.isEmpty());
        } finally {
            retrying = false;
        }
    }

    /** A free slot, evicting a clean block if none is free; -1 if every slot is dirty or in use. */
    private int allocate() {
        if (freeCount > 0) {
            return free[--freeCount];
        }
        int s = policy.evict(this::evictable);
        if (s < 0) {
            return -1;
        }
        map.remove(blockOf[s]);
        blockOf[s] = -1;
        evictions++;
        return s;
    }

    private boolean evictable(int s) {
        return !busy[s] && !dirty[s] && !onDisk[s];
    }

    /** A slot reserved by {@link #allocate} and not used after all. */
    private void unallocate(int s) {
        busy[s] = false;
        free[freeCount++] = s;
    }

    private void install(int s, long block) {
        blockOf[s] = block;
        map.put(block, s);
        policy.insert(s, block);
    }

    /** Drops a resident block (written over below, discarded, or failed). */
    private void invalidate(int s) {
        map.remove(blockOf[s]);
        policy.remove(s);
        blockOf[s] = -1;
        if (dirty[s]) {
            dirty[s] = false;
            dirtyCount--;
            changed(s);
        }
        if (onDisk[s]) {
            limbo[limboCount++] = s;
        } else {
            free[freeCount++] = s;
        }
    }

    private void setDirty(int s) {
        if (!dirty[s]) {
            dirty[s] = true;
            dirtyCount++;
        }
        changed(s);
    }

    /** The slot's entry must be written at the next commit. */
    private void changed(int s) {
        int page = s * CacheHeader.ENTRY / 4096;
        if (!pageChanged[page]) {
            pageChanged[page] = true;
            changedPages[changedCount++] = page;
        }
    }

    /** One guest request on its way through the cache, a chunk of blocks at a time. */
    private final class Job {
        final MemorySegment buffer;
        /** The buffer's first {@code i} blocks, and each block by itself: slices made once. */
        final MemorySegment[] prefix;
        final MemorySegment[] block;
        final int[] slotOf;
        final byte[] kind;
        final int[] blockResult;
        final Store.Done[] blockDone;
        final Store.Done partDone = this::partDone;
        final Store.Done belowReadDone = this::belowReadDone;
        BlockRequest request;
        Origin from;
        long done;
        long b0;
        long n;
        boolean holds;
        int pending;
        int error;
        /** What to do when {@link #pending} reaches zero. */
        int step;
        /** The mode this write was issued in (the cache's mode may change while it runs). */
        Mode wmode;

        Job(MemorySegment buffer) {
            this.buffer = buffer;
            prefix = new MemorySegment[chunkBlocks + 1];
            block = new MemorySegment[chunkBlocks];
            slotOf = new int[chunkBlocks];
            kind = new byte[chunkBlocks];
            blockResult = new int[chunkBlocks];
            blockDone = new Store.Done[chunkBlocks];
            for (int i = 0; i <= chunkBlocks; i++) {
                prefix[i] = buffer.asSlice(0, (long) i * bs);
            }
            for (int i = 0; i < chunkBlocks; i++) {
                block[i] = buffer.asSlice((long) i * bs, bs);
                int at = i;
                blockDone[i] = rc -> {
                    blockResult[at] = rc;
                    partDone(rc);
                };
            }
        }

        void start(BlockRequest r, Origin o) {
            request = r;
            from = o;
            done = 0;
            error = 0;
            BlockOp op = r.op();
            boolean data = op == BlockOp.READ || op == BlockOp.WRITE;
            if (op == BlockOp.FLUSH) {
                flush(this);
                return;
            }
            if (!data && op != BlockOp.DISCARD && op != BlockOp.WRITE_ZEROES) {
                end(-Errno.EINVAL);
                return;
            }
            // The guest is told the cache's block size as its logical block size; anything else is refused.
            if (r.offset() % bs != 0 || r.length() % bs != 0 || r.length() <= 0
                    || (data && r.data().length() < r.length())) {
                end(-Errno.EIO);
                return;
            }
            chunk();
        }

        /** Starts the next chunk: locks its blocks, or parks until they are free. */
        void chunk() {
            BlockRequest r = request;
            b0 = (r.offset() + done) / bs;
            long left = (r.length() - done) / bs;
            n = r.op() == BlockOp.READ || r.op() == BlockOp.WRITE ? Math.min(chunkBlocks, left) : left;
            // Overlapping requests in flight together have no order (virtio-blk): whichever finds its blocks free goes.
            if (locked(b0, n, this)) {
                parked.add(this);
                return;
            }
            holds = true;
            switch (r.op()) {
                case READ -> read();
                case WRITE -> write();
                default -> discard();
            }
        }

        // ---- READ

        private void read() {
            int count = (int) n;
            boolean allHit = true;
            for (int i = 0; i < count; i++) {
                int s = map.get(b0 + i);
                slotOf[i] = s;
                if (s >= 0) {
                    busy[s] = true;
                    kind[i] = dirty[s] ? HIT_DIRTY : HIT_CLEAN;
                    policy.touch(s);
                    hits++;
                } else {
                    allHit = false;
                    misses++;
                }
            }
            if (allHit) {
                step = STEP_HITS_READ;
                pending = count;
                for (int i = 0; i < count; i++) {
                    cache.read(header.slotOffset(slotOf[i]), block[i], partDone);
                }
                return;
            }
            for (int i = 0; i < count; i++) {
                if (slotOf[i] < 0) {
                    int s = allocate();
                    slotOf[i] = s;
                    kind[i] = s < 0 ? NO_FILL : FILL;
                    if (s >= 0) {
                        busy[s] = true;
                    }
                }
            }
            below.read(b0 * bs, prefix[count], belowReadDone);
        }

        private void belowReadDone(int rc) {
            int count = (int) n;
            if (rc < 0) {
                error = rc;
                endChunk();
                return;
            }
            // Blocks written back later than what lies below: the cache's copy is the data.
            step = STEP_OVERLAY;
            pending = 1;
            for (int i = 0; i < count; i++) {
                if (kind[i] == HIT_DIRTY) {
                    pending++;
                    cache.read(header.slotOffset(slotOf[i]), block[i], partDone);
                }
            }
            partDone(0);
        }

        private void fill() {
            int count = (int) n;
            step = STEP_FILLED;
            pending = 1;
            for (int i = 0; i < count; i++) {
                if (kind[i] == FILL) {
                    pending++;
                    blockResult[i] = 0;
                    cache.write(header.slotOffset(slotOf[i]), block[i], blockDone[i]);
                }
            }
            partDone(0);
        }

        // ---- WRITE

        private void write() {
            int count = (int) n;
            request.data().copyTo(done, buffer, 0, (long) count * bs); // read the guest's data; never write it
            wmode = mode;
            if (wmode == Mode.WRITE_AROUND) {
                for (int i = 0; i < count; i++) {
                    int s = map.get(b0 + i);
                    if (s >= 0) {
                        invalidate(s);
                    }
                }
                step = STEP_WRITTEN;
                pending = 1;
                below.write(b0 * bs, prefix[count], partDone);
                return;
            }
            for (int i = 0; i < count; i++) {
                int s = map.get(b0 + i);
                kind[i] = s >= 0 ? HIT_CLEAN : FILL;
                if (s < 0) {
                    s = allocate();
                    if (s < 0) {
                        kind[i] = NO_FILL;
                    }
                }
                slotOf[i] = s;
                if (s >= 0) {
                    busy[s] = true;
                }
            }
            if (wmode == Mode.WRITE_BACK) {
                for (int i = 0; i < count; i++) {
                    if (kind[i] == NO_FILL) {
                        // No clean slot to take: wait for write-back to free some.
                        unlockSlots(true);
                        holds = false;
                        parked.add(this);
                        return;
                    }
                }
            }
            step = STEP_WRITTEN;
            pending = 1;
            if (wmode == Mode.WRITE_BACK) {
                writeBackWrites++;
            }
            for (int i = 0; i < count; i++) {
                if (kind[i] != NO_FILL) {
                    pending++;
                    blockResult[i] = 0;
                    cache.write(header.slotOffset(slotOf[i]), block[i], blockDone[i]);
                }
            }
            if (wmode == Mode.WRITE_THROUGH) {
                pending++;
                below.write(b0 * bs, prefix[count], partDone);
            }
            partDone(0);
        }

        private void written() {
            int count = (int) n;
            if (wmode == Mode.WRITE_AROUND) {
                endChunk();
                return;
            }
            boolean belowFailed = wmode == Mode.WRITE_THROUGH && error < 0;
            if (wmode == Mode.WRITE_BACK) {
                writeBackWrites--;
            } else if (writeBackCache) {
                belowChanged = true; // a write-back cache draining: a guest FLUSH commits, so it must flush below too
            }
            for (int i = 0; i < count; i++) {
                int s = slotOf[i];
                if (kind[i] == NO_FILL) {
                    continue;
                }
                int rc = blockResult[i];
                if (wmode == Mode.WRITE_BACK) {
                    if (rc < 0) {
                        error = rc;
                        if (kind[i] == FILL) {
                            unallocate(s);
                            slotOf[i] = -1;
                        }
                        continue;
                    }
                    if (kind[i] == FILL) {
                        install(s, b0 + i);
                    }
                    setDirty(s);
                } else if (rc >= 0 && dirty[s]) {
                    // A dirty block (a write-back cache draining) now holds this write; if the layers below failed
                    // it, the block stays dirty and is written back, never dropped for the older copy below.
                    busy[s] = false;
                } else if (rc < 0 || belowFailed) {
                    // The cache must not keep what the layers below did not take (or a copy it could not write).
                    if (kind[i] == FILL) {
                        unallocate(s);
                    } else {
                        busy[s] = false;
                        invalidate(s);
                    }
                    slotOf[i] = -1;
                } else if (kind[i] == FILL) {
                    install(s, b0 + i);
                }
            }
            if (wmode == Mode.WRITE_THROUGH && !belowFailed) {
                error = 0; // a failed cache copy was dropped; the write itself succeeded
            }
            endChunk();
        }

        // ---- DISCARD, WRITE_ZEROES

        private void discard() {
            if (n <= 4L * slots) {
                for (long b = b0; b < b0 + n; b++) {
                    int s = map.get(b);
                    if (s >= 0) {
                        invalidate(s);
                    }
                }
            } else {
                for (int s = 0; s < slots; s++) {
                    if (blockOf[s] >= b0 && blockOf[s] < b0 + n) {
                        invalidate(s);
                    }
                }
            }
            step = STEP_WRITTEN;
            pending = 1;
            belowChanged = true;
            below.discard(request.offset(), request.length(), request.op() == BlockOp.WRITE_ZEROES, partDone);
        }

        // ---- common

        private void partDone(int rc) {
            if (rc < 0 && error == 0) {
                error = rc;
            }
            if (--pending > 0) {
                return;
            }
            switch (step) {
                case STEP_HITS_READ -> {
                    if (error == 0) {
                        request.data().copyFrom(buffer, 0, done, n * bs);
                    }
                    endChunk();
                }
                case STEP_OVERLAY -> {
                    if (error < 0) {
                        endChunk();
                        return;
                    }
                    request.data().copyFrom(buffer, 0, done, n * bs);
                    fill();
                }
                case STEP_FILLED -> {
                    for (int i = 0; i < n; i++) {
                        if (kind[i] == FILL) {
                            if (blockResult[i] < 0) {
                                unallocate(slotOf[i]);
                                slotOf[i] = -1;
                            } else {
                                install(slotOf[i], b0 + i);
                                fills++;
                            }
                        }
                    }
                    error = 0; // the guest's data was read; a failed fill only costs a later miss
                    endChunk();
                }
                case STEP_WRITTEN -> {
                    if (request.op() == BlockOp.WRITE) {
                        written();
                    } else {
                        endChunk();
                    }
                }
                default -> throw new IllegalStateException("job in step " + step);
            }
        }

        /** Releases the chunk's slots (and, when {@code dropFresh}, returns freshly reserved ones). */
        private void unlockSlots(boolean dropFresh) {
            if (request.op() != BlockOp.READ && request.op() != BlockOp.WRITE) {
                return;
            }
            for (int i = 0; i < n; i++) {
                int s = slotOf[i];
                if (s < 0) {
                    continue;
                }
                busy[s] = false;
                if (dropFresh && kind[i] == FILL) {
                    unallocate(s);
                } else if (kind[i] == FILL && blockOf[s] < 0) {
                    unallocate(s); // a read whose data never arrived
                }
                slotOf[i] = -1;
            }
        }

        private void endChunk() {
            unlockSlots(false);
            holds = false;
            if (error < 0) {
                end(error);
                retryParked();
                return;
            }
            done += n * bs;
            if (done < request.length()) {
                chunk();
            } else {
                end(request.op() == BlockOp.READ || request.op() == BlockOp.WRITE ? request.length() : 0);
            }
            retryParked();
        }

        void end(long result) {
            BlockRequest r = request;
            Origin o = from;
            request = null;
            from = null;
            release(this);
            o.finish(r, result);
        }
    }

    private static final int STEP_HITS_READ = 1;
    private static final int STEP_OVERLAY = 2;
    private static final int STEP_FILLED = 3;
    private static final int STEP_WRITTEN = 4;

    // ---------------------------------------------------------------- FLUSH and commits

    /** A guest FLUSH: in write-back mode, a commit that started after it arrived. */
    private void flush(Job j) {
        flushNext.add(j);
        if (!commitRunning) {
            startCommit();
        }
    }

    /**
     * Makes the slot table match what was acknowledged before now: flush the data on the cache device, flush the
     * layers below if write-backs or discards went there, write the changed table pages, flush again.
     */
    private void startCommit() {
        commitRunning = true;
        flushCurrent.addAll(flushNext);
        flushNext.clear();
        committingCount = 0;
        long seq = commitSeq++;
        for (int i = 0; i < changedCount; i++) {
            int page = changedPages[i];
            pageChanged[page] = false;
            committing[committingCount++] = page;
            int first = page * (4096 / CacheHeader.ENTRY);
            int last = Math.min(slots, first + 4096 / CacheHeader.ENTRY);
            for (int s = first; s < last; s++) {
                long b = dirty[s] ? blockOf[s] : SlotEntry.EMPTY;
                MemorySegment.copy(entries.encode(b, seq), 0, table, ValueLayout.JAVA_BYTE, (long) s * CacheHeader.ENTRY,
                        CacheHeader.ENTRY);
                if (b >= 0) {
                    onDisk[s] = true; // the write may land from now on
                }
            }
        }
        changedCount = 0;
        belowChangedInCommit = belowChanged;
        belowChanged = false;
        commitError = 0;
        commitStep = 1;
        commitPending = 1;
        cache.flush(commitDone);
    }

    private final Store.Done commitDone = this::commitStepDone;

    private void commitStepDone(int rc) {
        if (rc < 0 && commitError == 0) {
            commitError = rc;
        }
        if (--commitPending > 0) {
            return;
        }
        if (commitError < 0) {
            endCommit();
            return;
        }
        switch (commitStep) {
            case 1 -> {
                commitStep = 2;
                commitPending = 1;
                if (belowChangedInCommit) {
                    below.flush(commitDone);
                } else {
                    commitStepDone(0);
                }
            }
            case 2 -> {
                commitStep = 3;
                if (committingCount == 0) {
                    endCommit();
                    return;
                }
                commitPending = committingCount;
                for (int i = 0; i < committingCount; i++) {
                    long at = (long) committing[i] * 4096;
                    cache.write(header.metadataOffset() + at, table.asSlice(at, 4096), commitDone);
                }
            }
            case 3 -> {
                commitStep = 4;
                commitPending = 1;
                cache.flush(commitDone);
            }
            default -> endCommit();
        }
    }

    private void endCommit() {
        int rc = commitError;
        if (rc < 0) {
            LOG.log(System.Logger.Level.ERROR, label + ": commit of the slot table failed: errno " + -rc
                    + "; FLUSH fails, the pages are written again at the next commit");
            for (int i = 0; i < committingCount; i++) {
                int page = committing[i];
                if (!pageChanged[page]) {
                    pageChanged[page] = true;
                    changedPages[changedCount++] = page;
                }
            }
            belowChanged |= belowChangedInCommit;
        } else {
            commits++;
            // Entries now on disk are what was encoded; a slot whose entry went empty may be reused.
            for (int i = 0; i < committingCount; i++) {
                int first = committing[i] * (4096 / CacheHeader.ENTRY);
                int last = Math.min(slots, first + 4096 / CacheHeader.ENTRY);
                for (int s = first; s < last; s++) {
                    onDisk[s] = (table.get(LE_LONG, (long) s * CacheHeader.ENTRY) & ((1L << 48) - 1)) != 0;
                }
            }
            int kept = 0;
            for (int i = 0; i < limboCount; i++) {
                int s = limbo[i];
                if (onDisk[s] || blockOf[s] >= 0) {
                    limbo[kept++] = s;
                } else {
                    free[freeCount++] = s;
                }
            }
            limboCount = kept;
        }
        committingCount = 0;
        commitRunning = false;
        // Answering a FLUSH may start a waiting request, even another FLUSH and so a new commit: that one must not
        // be answered with this commit's result.
        ArrayDeque<Job> answered = flushCurrent;
        flushCurrent = flushAnswered;
        flushAnswered = answered;
        Job j;
        while ((j = answered.poll()) != null) {
            j.end(rc);
        }
        if (!flushNext.isEmpty() && !commitRunning) {
            startCommit();
        }
        retryParked();
        if (draining) {
            drainStep(rc);
        }
    }

    // ---------------------------------------------------------------- write-back

    /** A dirty block on its way below. */
    private final class Writeback {
        final MemorySegment buffer;
        final Store.Done readDone = this::readDone;
        final Store.Done writeDone = this::writeDone;
        int slot = -1;
        long block;

        Writeback(MemorySegment buffer) {
            this.buffer = buffer;
        }

        void start(int s) {
            slot = s;
            block = blockOf[s];
            busy[s] = true;
            cache.read(header.slotOffset(s), buffer, readDone);
        }

        private void readDone(int rc) {
            if (rc < 0) {
                finish(rc);
                return;
            }
            below.write(block * bs, buffer, writeDone);
        }

        private void writeDone(int rc) {
            finish(rc);
        }

        private void finish(int rc) {
            int s = slot;
            busy[s] = false;
            if (rc < 0) {
                writebackErrors++;
                if (writebackErrors == 1 || Long.bitCount(writebackErrors) == 1) {
                    LOG.log(System.Logger.Level.WARNING, label + ": write-back of block " + block + " failed: errno " + -rc
                            + " (failures so far: " + writebackErrors + "); the block stays dirty");
                }
            } else {
                // Clean now; its entry is cleared at the next commit, after a flush below.
                dirty[s] = false;
                dirtyCount--;
                changed(s);
                belowChanged = true;
                writtenBackBytes += bs;
                rateWindowBytes += bs;
            }
            slot = -1;
            retryParked();
            if (draining) {
                drainStep();
            }
        }
    }

    private boolean writebackIdle() {
        for (Writeback w : writebacks) {
            if (w.slot >= 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Called every 10 ms on the loop: writes dirty blocks back (in block order, at most the configured rate) when
     * the device is idle, when dirty blocks fill half the cache, when writes wait for slots, or while draining;
     * commits to reclaim slots written back.
     */
    void tick() {
        long now = System.nanoTime();
        if (now - rateWindowStart >= 1_000_000_000L) {
            writebackRate = rateWindowBytes * 1_000_000_000L / (now - rateWindowStart);
            rateWindowBytes = 0;
            rateWindowStart = now;
        }
        boolean idle = jobsSinceTick == 0 && freeJobs.size() == JOBS;
        jobsSinceTick = 0;
        boolean pressed = !parked.isEmpty() || dirtyCount * 2L > slots;
        if (dirtyCount > 0 && (idle || pressed || draining)) {
            writeBack(draining ? Long.MAX_VALUE : writebackBlocksPerTick);
        }
        if (!commitRunning && changedCount > 0 && writeBackCache && (idle || pressed) && writebackIdle()) {
            startCommit();
        }
        if (draining) {
            drainStep(); // the last write issued in write-back mode may have finished since
        }
    }

    /** Starts up to {@code budget} write-backs, lowest block first from where the last pass stopped. */
    private void writeBack(long budget) {
        long started = 0;
        for (Writeback w : writebacks) {
            if (w.slot >= 0) {
                continue;
            }
            int s = nextDirty();
            if (s < 0 || started >= budget) {
                return;
            }
            w.start(s);
            started++;
        }
    }

    /** The next dirty, idle, unlocked slot in block order; a new pass is sorted when the last one is used up. */
    private int nextDirty() {
        for (int pass = 0; pass < 2; pass++) {
            while (orderNext < orderCount) {
                long e = order[orderNext++];
                int s = (int) (e & (CacheHeader.MAX_SLOTS - 1));
                long b = e >>> 24;
                if (dirty[s] && !busy[s] && blockOf[s] == b && !locked(b, 1, null)) {
                    return s;
                }
            }
            orderCount = 0;
            orderNext = 0;
            for (int s = 0; s < slots; s++) {
                if (dirty[s]) {
                    order[orderCount++] = (blockOf[s] << 24) | s;
                }
            }
            Arrays.sort(order, 0, orderCount);
        }
        return -1;
    }

    /**
     * Writes back every dirty block, flushes the layers below, commits, then calls {@code whenDone} on the loop with 0,
     * or with a negative errno if a write-back or the commit failed (the blocks concerned stay dirty; the drain
     * stops). Guest requests may still arrive meanwhile; their dirty blocks are written back too. Call
     * {@link #writeThrough} first so that the drain ends.
     */
    void drain(java.util.function.IntConsumer whenDone) {
        draining = true;
        drained = whenDone;
        drainErrorsAtStart = writebackErrors;
        drainStep();
    }

    /** Stops a drain without calling its {@code whenDone} (the detach was given up). */
    void stopDrain() {
        draining = false;
        drained = null;
    }

    /** New writes go below and into the cache, clean (a write-back cache about to be detached). On the loop. */
    void writeThrough() {
        if (writeBackCache) {
            mode = Mode.WRITE_THROUGH;
        }
    }

    /** Back to write-back after a detach was refused. On the loop. */
    void writeBackAgain() {
        if (writeBackCache) {
            mode = Mode.WRITE_BACK;
        }
    }

    private void drainStep() {
        drainStep(0);
    }

    private void drainStep(int commitFailed) {
        if (commitFailed < 0) {
            endDrain(commitFailed);
            return;
        }
        if (writebackErrors > drainErrorsAtStart) {
            if (writebackIdle()) {
                endDrain(-Errno.EIO);
            }
            return;
        }
        if (dirtyCount > 0 || writeBackWrites > 0) {
            if (dirtyCount > 0 && writebackIdle()) {
                writeBack(Long.MAX_VALUE);
            }
            return;
        }
        if (!writebackIdle() || commitRunning) {
            return;
        }
        if (changedCount > 0 || belowChanged) {
            startCommit();
            return;
        }
        endDrain(0);
    }

    private void endDrain(int rc) {
        draining = false;
        java.util.function.IntConsumer r = drained;
        drained = null;
        if (r != null) {
            r.accept(rc);
        }
    }

    /**
     * The last commit when the owner loop has stopped (the device is shutting down, so nothing is in flight): the
     * table is written directly with {@code writer} after the cache device's data was synced. Dirty blocks keep
     * their entries, and so do blocks written back since the last commit (the layers below were not flushed after
     * them): they are written back again, harmlessly, when the cache reopens. Called on the closing thread after
     * the loop thread ended.
     */
    void commitStopped(TableWriter writer) throws java.io.IOException {
        writer.syncData();
        long seq = commitSeq++;
        for (int s = 0; s < slots; s++) {
            boolean keep = dirty[s] || (onDisk[s] && blockOf[s] >= 0);
            MemorySegment.copy(entries.encode(keep ? blockOf[s] : SlotEntry.EMPTY, seq), 0, table, ValueLayout.JAVA_BYTE,
                    (long) s * CacheHeader.ENTRY, CacheHeader.ENTRY);
        }
        writer.writeTable(header.metadataOffset(), table.toArray(ValueLayout.JAVA_BYTE));
        changedCount = 0;
        commits++;
    }

    /** Blocking access to the cache device for {@link #commitStopped}. */
    interface TableWriter {
        void syncData() throws java.io.IOException;

        void writeTable(long offset, byte[] table) throws java.io.IOException;
    }

    /** Whether requests, write-backs or a commit are still in progress (the buffers are in use). */
    boolean busy() {
        return freeJobs.size() != JOBS || !writebackIdle() || commitRunning;
    }

    void close() {
        if (!busy()) {
            arena.close();
        }
    }
}
