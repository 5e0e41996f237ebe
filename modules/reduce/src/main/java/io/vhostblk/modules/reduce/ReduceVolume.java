package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.UUID;

/**
 * A deduplicating, compressing volume over a {@link BackingStore}: the guest-visible logical blocks are mapped to
 * data blocks or compressed fragments of the store, with all metadata on the same store (docs/reduce.md).
 *
 * <p>Completion-driven and single-threaded: every call and every backing-store completion must happen on one
 * thread (the queue's loop); nothing here waits for I/O except {@link #format} and {@link #open}, which run before
 * the volume serves. Requests complete through their {@link IoCompletion} with 0 or a negative errno
 * ({@link Errno}). Requests are in bytes, multiples of {@link #SECTOR}; writes read their source buffer until they
 * complete, reads fill theirs.
 */
public final class ReduceVolume implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(ReduceVolume.class.getName());

    /** Requests are aligned to and sized in multiples of this. */
    public static final int SECTOR = 512;

    /** What a volume does with new writes: the module names enable these. */
    public record Options(boolean dedup, boolean compress, int maxBlockOps, int indexEntries) {

        public Options {
            if (maxBlockOps < PackedBlock.MAX_FRAGMENTS + 2) {
                throw new IllegalArgumentException("maxBlockOps must be at least " + (PackedBlock.MAX_FRAGMENTS + 2));
            }
            if (indexEntries < 2) {
                throw new IllegalArgumentException("indexEntries must be at least 2");
            }
        }

        /** Both enabled, 64 blocks in flight, a 1 M-entry index (24 MiB). */
        public static Options both() {
            return new Options(true, true, 64, 1 << 20);
        }

        public Options withDedup(boolean on) {
            return new Options(on, compress, maxBlockOps, indexEntries);
        }

        public Options withCompress(boolean on) {
            return new Options(dedup, on, maxBlockOps, indexEntries);
        }
    }

    /** Sizes and codec of a new volume. {@code journalBlocks} 0 picks a size from the physical size. */
    public record FormatOptions(long logicalBytes, int blockSize, Codec codec, long journalBlocks) {
    }

    private final BackingStore store;
    private final String name;
    private final Superblock sb;
    private final int bs;
    private Options options;
    private final long[] map;
    private final SpaceMap space;
    private DedupIndex index;
    private final ReduceCounters counters = new ReduceCounters();
    private final Arena arena = Arena.ofShared();
    private final MemorySegment zeros;
    private final BlockCompressor compressor = new BlockCompressor();
    private static final java.lang.invoke.VarHandle DIGEST_LONG =
            java.lang.invoke.MethodHandles.byteArrayViewVarHandle(long[].class, java.nio.ByteOrder.LITTLE_ENDIAN);
    private final java.util.concurrent.Executor worker;
    private final java.util.concurrent.Executor loop;
    private long mappedBlocks;

    // Journal and checkpoint state (see Commit).
    private long generation;
    private int activeArea;
    private long checkpointSeq;
    private long closedSeq;
    private MemorySegment openJournal;
    private final ArrayList<MemorySegment> closedJournal = new ArrayList<>();
    private final ArrayDeque<MemorySegment> freeJournal = new ArrayDeque<>();
    /**
     * The checkpoint being written (the map and counts encoded at the moment its commit sealed the journal), or null:
     * it exists only while a checkpoint is written, so a serving volume does not hold a second copy of its map.
     */
    private MemorySegment checkpointBuffer;
    private Arena checkpointArena;
    private final Commit commit = new Commit();

    // Scheduling: a trampoline so inline completions never recurse, and pools so requests allocate little.
    private final ArrayDeque<Step> ready = new ArrayDeque<>();
    private boolean draining;
    private final ArrayDeque<Request> queued = new ArrayDeque<>();
    private final ArrayDeque<BlockOp> freeOps = new ArrayDeque<>();
    private final long[] locked;
    private final ArrayList<BlockOp> lockWaiters = new ArrayList<>();
    private int progressingWrites;
    private Bin bin;
    private final ArrayDeque<Bin> freeBins = new ArrayDeque<>();
    private final ArrayDeque<Step> spaceWaiters = new ArrayDeque<>();
    private final ArrayDeque<Request> freeRequests = new ArrayDeque<>();
    private final ArrayDeque<IoCompletion> flushWaiting = new ArrayDeque<>();
    private final ArrayDeque<IoCompletion> flushInCommit = new ArrayDeque<>();
    private int broken;
    private boolean closed;

    /** Computes a block's 128-bit fingerprint into {@code out[0..1]}; replaceable only by tests. */
    interface Fingerprint {
        void of(MemorySegment block, long[] out);
    }

    /** The first 128 bits of SHA-256 (the JDK uses the CPU's SHA instructions where it has them); one per op. */
    private static final class Sha256 implements Fingerprint {
        private final MessageDigest digest;
        private final byte[] out = new byte[32];
        private byte[] in = new byte[4096];

        Sha256() {
            try {
                digest = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException("the JDK lacks SHA-256", e);
            }
        }

        @Override
        public void of(MemorySegment block, long[] into) {
            // Through a heap copy: MessageDigest's ByteBuffer path copies a direct buffer chunk by chunk itself,
            // which profiled slower than one bulk copy and the byte[] path.
            int n = (int) block.byteSize();
            if (in.length < n) {
                in = new byte[n];
            }
            MemorySegment.copy(block, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, in, 0, n);
            digest.update(in, 0, n);
            try {
                digest.digest(out, 0, 32);
            } catch (java.security.DigestException e) {
                throw new IllegalStateException("SHA-256 into a 32-byte buffer", e);
            }
            into[0] = (long) DIGEST_LONG.get(out, 0);
            into[1] = (long) DIGEST_LONG.get(out, 8);
        }
    }

    private final Fingerprint fingerprint;
    private int journalEntries;

    private ReduceVolume(BackingStore store, String name, VolumeState state, Options options, Fingerprint fingerprint,
                         java.util.concurrent.Executor worker, java.util.concurrent.Executor loop) {
        this.store = store;
        this.name = name;
        this.sb = state.sb;
        this.bs = sb.blockSize();
        this.options = options;
        this.worker = worker;
        this.loop = loop;
        this.fingerprint = fingerprint;
        this.map = state.map;
        this.space = new SpaceMap(sb.dataBlocks());
        space.load(state.refs, map);
        this.index = options.dedup() ? new DedupIndex(options.indexEntries()) : null;
        this.zeros = arena.allocate(bs, 4096);
        this.locked = new long[(int) ((sb.logicalBlocks() + 63) / 64)];
        for (long m : map) {
            if (m != Mapping.UNMAPPED) {
                mappedBlocks++;
            }
        }
        this.journalEntries = JournalBlock.capacity(bs);
        for (int i = 0; i < options.maxBlockOps(); i++) {
            freeOps.add(new BlockOp());
        }
        this.generation = state.generation;
        this.activeArea = state.area;
        this.checkpointSeq = state.lastSeq;
        this.closedSeq = state.lastSeq;
    }

    /** Writes a new, empty volume onto {@code store}; its physical size is the store's size. Waits for the I/O. */
    public static UUID format(BackingStore store, FormatOptions f) throws ReduceException {
        Superblock sb;
        try {
            sb = Superblock.plan(f.blockSize(), f.logicalBytes(), store.size(), f.codec(), f.journalBlocks());
        } catch (IllegalArgumentException e) {
            throw new ReduceException("cannot format: " + e.getMessage());
        }
        try (Arena a = Arena.ofShared()) {
            MemorySegment ckpt = a.allocate(Checkpoint.bytes(sb), 4096);
            Checkpoint.encode(sb, 1, 0, new long[(int) sb.logicalBlocks()], null, ckpt);
            Blocking.write(store, sb.offsetOf(sb.checkpointStart(0)), ckpt);
            MemorySegment block = a.allocate(sb.blockSize(), 4096);
            Blocking.write(store, sb.offsetOf(sb.checkpointStart(1)), block); // no stale checkpoint B
            Blocking.flush(store);
            sb.encode(block);
            // The superblock last: an interrupted format leaves no volume that looks valid.
            Blocking.write(store, 0, block);
            Blocking.flush(store);
        }
        return sb.uuid();
    }

    /**
     * Opens the volume on {@code store}, recovering from a crash if there was one: loads the newest valid
     * checkpoint, replays the journal after it, and makes the result durable as a new checkpoint. Waits for the
     * I/O, so call it before the volume serves.
     */
    public static ReduceVolume open(BackingStore store, String name, Options options) throws ReduceException {
        return open(store, name, options, null, null, null, 0);
    }

    /**
     * Like {@link #open(BackingStore, String, Options)}, with hashing and compression run by {@code worker}; each
     * result comes back through {@code loop}, which must run it on the volume's thread (the queue's event loop).
     */
    public static ReduceVolume open(BackingStore store, String name, Options options, java.util.concurrent.Executor worker,
                                    java.util.concurrent.Executor loop) throws ReduceException {
        if ((worker == null) != (loop == null)) {
            throw new IllegalArgumentException("a worker needs a loop executor to come back to, and the reverse");
        }
        return open(store, name, options, null, worker, loop, 0);
    }

    static ReduceVolume open(BackingStore store, String name, Options options, Fingerprint fingerprint) throws ReduceException {
        return open(store, name, options, fingerprint, null, null, 0);
    }

    /**
     * {@code journalEntries} &gt; 0 closes journal blocks after that many entries (tests: many journal blocks per
     * commit from a small workload); readers take the count from each block, so the format is the same.
     */
    static ReduceVolume open(BackingStore store, String name, Options options, Fingerprint fingerprint,
                             java.util.concurrent.Executor worker, java.util.concurrent.Executor loop, int journalEntries)
            throws ReduceException {
        VolumeState state = VolumeState.load(store, name);
        ReduceVolume v = new ReduceVolume(store, name, state, options, fingerprint, worker, loop);
        v.limitJournalEntries(journalEntries);
        try {
            Blocking.write(store, v.newCheckpointOffset(), v.encodeCheckpoint(v.closedSeq));
        } finally {
            v.checkpointWritten();
        }
        Blocking.flush(store);
        v.openingCheckpointWritten(state);
        return v;
    }

    /** {@code entries} &gt; 0 closes journal blocks after that many entries (tests: many blocks from a small workload). */
    void limitJournalEntries(int entries) {
        if (entries > 0) {
            journalEntries = Math.min(entries, journalEntries);
        }
    }

    /** The end of {@link #open(BackingStore, String, Options, Opened)}: one of the two, on the store's thread. */
    interface Opened {
        void opened(ReduceVolume volume);

        void failed(ReduceException e);
    }

    /**
     * Opens the volume as {@link #open(BackingStore, String, Options)} does, without waiting: every read and write
     * is a completion on the store's thread, so a queue's event loop can open the volume through the layers
     * beneath its module. {@code done} hears the volume once its new checkpoint is durable, or the error.
     */
    static void open(BackingStore store, String name, Options options, Opened done) {
        open(store, name, options, null, null, done);
    }

    /** As {@link #open(BackingStore, String, Options, Opened)}, with hashing and compression on {@code worker}. */
    static void open(BackingStore store, String name, Options options, java.util.concurrent.Executor worker,
                     java.util.concurrent.Executor loop, Opened done) {
        if ((worker == null) != (loop == null)) {
            throw new IllegalArgumentException("a worker needs a loop executor to come back to, and the reverse");
        }
        VolumeLoading.start(store, name, new VolumeLoading.Loaded() {
            @Override
            public void loaded(VolumeState state) {
                ReduceVolume v = new ReduceVolume(store, name, state, options, null, worker, loop);
                long at = v.newCheckpointOffset();
                MemorySegment checkpoint = v.encodeCheckpoint(v.closedSeq);
                long bytes = checkpoint.byteSize();
                store.write(at, checkpoint, w -> {
                    v.checkpointWritten();
                    if (w < 0) {
                        v.close();
                        done.failed(new ReduceException(name + ": writing the new checkpoint (" + bytes
                                + " bytes at offset " + at + ") failed: " + Errno.name(w)));
                        return;
                    }
                    store.flush(f -> {
                        if (f < 0) {
                            v.close();
                            done.failed(new ReduceException(name + ": flushing the new checkpoint failed: " + Errno.name(f)));
                            return;
                        }
                        v.openingCheckpointWritten(state);
                        done.opened(v);
                    });
                });
            }

            @Override
            public void failed(ReduceException e) {
                done.failed(e);
            }
        });
    }

    /** Encodes the map and counts as they are now into a checkpoint buffer made for it ({@link #checkpointWritten}). */
    private MemorySegment encodeCheckpoint(long seq) {
        checkpointArena = Arena.ofShared();
        checkpointBuffer = checkpointArena.allocate(Checkpoint.bytes(sb), 4096);
        Checkpoint.encode(sb, generation + 1, seq, map, space, checkpointBuffer);
        return checkpointBuffer;
    }

    /** The checkpoint's write is over (done or failed): its buffer goes back to the system. */
    private void checkpointWritten() {
        if (checkpointArena != null) {
            checkpointArena.close();
            checkpointArena = null;
            checkpointBuffer = null;
        }
    }

    /** The checkpoint area not in use: the opening checkpoint goes there, so a torn write leaves the other. */
    private long newCheckpointOffset() {
        return sb.offsetOf(sb.checkpointStart(1 - activeArea));
    }

    /**
     * The checkpoint of the opened state is durable with the next generation: journal blocks left from before the
     * crash can never be replayed after new ones.
     */
    private void openingCheckpointWritten(VolumeState state) {
        generation++;
        activeArea = 1 - activeArea;
        checkpointSeq = closedSeq;
        counters.checkpointsWritten++;
        LOG.log(System.Logger.Level.INFO, "{0}: opened reduce volume {1}: {2} logical blocks of {3} B, checkpoint generation {4}, "
                        + "{5} journal blocks replayed", name, state.sb.uuid(), state.sb.logicalBlocks(), state.sb.blockSize(),
                generation, state.replayedBlocks);
    }

    /**
     * Turns dedup and compression on (never off) before the volume serves: a policy naming both {@code dedup} and
     * {@code compress} attaches the second name to the volume the first one opened. Call before the first request.
     */
    void enable(boolean dedup, boolean compress) {
        if (busy()) {
            throw new IllegalStateException(name + ": features change only before the volume serves");
        }
        options = options.withDedup(options.dedup() || dedup).withCompress(options.compress() || compress);
        if (options.dedup() && index == null) {
            index = new DedupIndex(options.indexEntries());
        }
    }

    /** Whether new writes are deduplicated and compressed. */
    public Options options() {
        return options;
    }

    /** Bytes the guest sees. */
    public long logicalSize() {
        return sb.logicalBytes();
    }

    public int blockSize() {
        return bs;
    }

    public UUID uuid() {
        return sb.uuid();
    }

    public ReduceCounters counters() {
        return counters;
    }

    /** Logical blocks that hold data (not unmapped). */
    public long mappedBlocks() {
        return mappedBlocks;
    }

    /** Bytes of the data area in use (live blocks). */
    public long physicalBytesUsed() {
        return space.liveBlocks() * bs;
    }

    /** Data-area bytes free for new data now (not counting blocks whose freeing awaits a commit). */
    public long physicalBytesFree() {
        return space.freeBlocks() * bs;
    }

    public void read(long offset, MemorySegment into, IoCompletion done) {
        submit(Kind.READ, offset, into.byteSize(), into, done);
    }

    public void write(long offset, MemorySegment from, IoCompletion done) {
        submit(Kind.WRITE, offset, from.byteSize(), from, done);
    }

    /** WRITE_ZEROES: the range reads as zeros and its blocks are released. */
    public void writeZeroes(long offset, long length, IoCompletion done) {
        submit(Kind.ZERO, offset, length, null, done);
    }

    /** DISCARD: handled like WRITE_ZEROES (the space comes back; reading gives zeros). */
    public void discard(long offset, long length, IoCompletion done) {
        submit(Kind.ZERO, offset, length, null, done);
    }

    /** Completes when every request completed before this call is durable. */
    public void flush(IoCompletion done) {
        counters.flushRequests++;
        if (broken != 0 || closed) {
            done.complete(Errno.EIO);
            return;
        }
        if (!journalDirty()) {
            if (commit.running && !commit.metadataDurable) {
                flushInCommit.add(done); // everything it covers was sealed into the running commit
            } else {
                done.complete(Errno.OK);
            }
            return;
        }
        flushWaiting.add(done);
        requestCommit();
        drain();
    }

    private void submit(Kind kind, long offset, long length, MemorySegment data, IoCompletion done) {
        if (broken != 0 || closed) {
            done.complete(Errno.EIO);
            return;
        }
        if (offset < 0 || length <= 0 || offset % SECTOR != 0 || length % SECTOR != 0 || offset + length > sb.logicalBytes()) {
            LOG.log(System.Logger.Level.DEBUG, "{0}: {1} of {2} B at {3} refused: outside the volume or not sector-aligned",
                    name, kind, length, offset);
            done.complete(Errno.EINVAL);
            return;
        }
        Request r = freeRequests.isEmpty() ? new Request() : freeRequests.poll();
        queued.add(r.set(kind, offset, length, data, done));
        drain();
    }

    // ---- scheduling ----

    /** Something that continues when an I/O or another step finishes. */
    private interface Step {
        void resume();
    }

    private void drain() {
        if (draining) {
            return;
        }
        draining = true;
        try {
            while (true) {
                Step s = ready.poll();
                if (s != null) {
                    s.resume();
                    continue;
                }
                if (pump()) {
                    continue;
                }
                if (bin != null && progressingWrites == 0) {
                    // No write can still join this packed block soon: write it rather than make its blocks wait.
                    sealBin();
                    continue;
                }
                break;
            }
        } finally {
            draining = false;
        }
    }

    /** Hands free block ops to queued requests; true if it started any. */
    private boolean pump() {
        boolean started = false;
        while (!queued.isEmpty() && !freeOps.isEmpty()) {
            Request r = queued.peek();
            BlockOp op = freeOps.poll();
            op.start(r, r.nextBlock++);
            if (r.nextBlock > r.lastBlock) {
                queued.poll();
            }
            ready.add(op);
            started = true;
        }
        return started;
    }

    private boolean tryLock(long lba) {
        int w = (int) (lba >>> 6);
        long bit = 1L << lba;
        if ((locked[w] & bit) != 0) {
            return false;
        }
        locked[w] |= bit;
        return true;
    }

    /** Passes the block's lock to the oldest op waiting for it, or frees it. */
    private void unlock(long lba) {
        for (int i = 0; i < lockWaiters.size(); i++) {
            BlockOp w = lockWaiters.get(i);
            if (w.lba == lba) {
                lockWaiters.remove(i);
                w.stage = BlockOp.LOCKED;
                ready.add(w);
                return;
            }
        }
        locked[(int) (lba >>> 6)] &= ~(1L << lba);
    }

    /** A step that found no free block waits for the running or next commit to free some, or fails. */
    private boolean waitForSpace(Step s) {
        if (broken == 0 && space.hasPending() || commit.running) {
            spaceWaiters.add(s);
            requestCommit();
            return true;
        }
        return false;
    }

    // ---- requests ----

    private enum Kind { READ, WRITE, ZERO }

    /** One request, split into block ops; pooled, so a steady stream of requests allocates nothing here. */
    private final class Request {
        Kind kind;
        long offset;
        long length;
        MemorySegment data;
        IoCompletion done;
        long lastBlock;
        long nextBlock;
        int remaining;
        int result;

        Request set(Kind kind, long offset, long length, MemorySegment data, IoCompletion done) {
            this.kind = kind;
            this.offset = offset;
            this.length = length;
            this.data = data;
            this.done = done;
            this.nextBlock = offset / bs;
            this.lastBlock = (offset + length - 1) / bs;
            this.remaining = (int) (lastBlock - nextBlock + 1);
            this.result = 0;
            return this;
        }

        void blockDone(int r) {
            if (r < 0 && result == 0) {
                result = r;
            }
            if (--remaining == 0) {
                if (kind != Kind.READ) {
                    counters.logicalBytesWritten += length;
                }
                IoCompletion d = done;
                int res = result;
                data = null;
                done = null;
                freeRequests.add(this); // before the callback, which may submit the next request
                d.complete(res);
            }
        }
    }

    /** The work on one logical block of a request, with its own block buffers. */
    private final class BlockOp implements Step, IoCompletion {
        static final int START = 0;
        static final int LOCKED = 1;
        static final int OLD_READ = 2;
        static final int CLASSIFY = 3;
        static final int VERIFY = 4;
        static final int STORE = 5;
        static final int WHOLE = 6;
        static final int WROTE = 7;
        static final int REMAP = 8;
        static final int FINISH = 9;
        static final int READ_DONE = 10;
        static final int HEAVY_DONE = 11;

        final MemorySegment buf = arena.allocate(bs, 4096);
        final MemorySegment scratch = arena.allocate(bs, 4096);
        final MemorySegment comp = arena.allocate(BlockCompressor.maxOutput(bs), 4096);
        final MemorySegment candidateBlock = arena.allocate(bs, 4096);
        final Fingerprint fingerprint = ReduceVolume.this.fingerprint != null ? ReduceVolume.this.fingerprint : new Sha256();
        final long[] fp = new long[2];
        RuntimeException heavyError;
        final Runnable heavy = this::heavy;
        final Runnable back = () -> {
            ready.add(this);
            drain();
        };
        Request request;
        long lba;
        int inBlock;      // first byte of the block the request covers
        int span;         // bytes of the block the request covers
        long dataAt;      // where that part is in the request's buffer
        int stage;
        int io;
        int result;
        long oldMapping;
        long newMapping;
        long candidate;
        boolean shared;
        long reserved = -1;
        long pinned = -1;
        int fragmentLength;
        int slot;
        long fpHi;
        long fpLo;

        void start(Request r, long block) {
            request = r;
            lba = block;
            long blockStart = block * bs;
            long from = Math.max(r.offset, blockStart);
            long to = Math.min(r.offset + r.length, blockStart + bs);
            inBlock = (int) (from - blockStart);
            span = (int) (to - from);
            dataAt = from - r.offset;
            stage = START;
            io = 0;
            result = 0;
            shared = false;
            reserved = -1;
            pinned = -1;
            candidate = Mapping.UNMAPPED;
        }

        boolean isRead() {
            return request.kind == Kind.READ;
        }

        @Override
        public void complete(int r) {
            io = r;
            ready.add(this);
            drain();
        }

        @Override
        public void resume() {
            try {
                step();
            } catch (RuntimeException e) {
                // A bug must not take the loop down: fail this block, keep serving the rest.
                LOG.log(System.Logger.Level.ERROR, name + ": block " + lba + " " + request.kind + " failed in stage " + stage, e);
                fail(Errno.EIO);
            }
        }

        private void fail(int r) {
            result = r;
            if (pinned >= 0) {
                space.unpin(pinned);
                pinned = -1;
            }
            if (reserved >= 0) {
                space.unreserve(reserved);
                reserved = -1;
            }
            stage = FINISH;
            finish();
        }

        private void step() {
            switch (stage) {
                case START -> {
                    if (isRead()) {
                        startRead();
                    } else if (tryLock(lba)) {
                        locked();
                    } else {
                        lockWaiters.add(this);
                    }
                }
                case LOCKED -> locked();
                case OLD_READ -> oldRead();
                case CLASSIFY -> classify();
                case VERIFY -> verify();
                case STORE -> store();
                case WHOLE -> whole();
                case WROTE -> wrote();
                case REMAP -> remap();
                case READ_DONE -> readDone();
                case HEAVY_DONE -> afterHeavy();
                case FINISH -> finish();
                default -> throw new IllegalStateException("stage " + stage);
            }
        }

        // -- read --

        private void startRead() {
            long m = map[(int) lba];
            if (m == Mapping.UNMAPPED) {
                request.data.asSlice(dataAt, span).fill((byte) 0);
                finish();
                return;
            }
            oldMapping = m;
            pinned = Mapping.dataBlock(m);
            space.pin(pinned);
            stage = READ_DONE;
            if (Mapping.isWhole(m)) {
                store.read(dataOffset(pinned), span == bs ? request.data.asSlice(dataAt, bs) : buf, this);
            } else {
                store.read(dataOffset(pinned), scratch, this);
            }
        }

        private void readDone() {
            space.unpin(pinned);
            pinned = -1;
            if (io < 0) {
                LOG.log(System.Logger.Level.WARNING, "{0}: reading logical block {1} ({2}) failed: {3}", name, lba,
                        Mapping.describe(oldMapping), Errno.name(io));
                fail(Errno.EIO);
                return;
            }
            if (Mapping.isWhole(oldMapping)) {
                if (span != bs) {
                    MemorySegment.copy(buf, inBlock, request.data, dataAt, span);
                }
            } else {
                if (!unpack(scratch, Mapping.slot(oldMapping), buf)) {
                    LOG.log(System.Logger.Level.ERROR, "{0}: logical block {1}: {2} is damaged", name, lba, Mapping.describe(oldMapping));
                    fail(Errno.EIO);
                    return;
                }
                MemorySegment.copy(buf, inBlock, request.data, dataAt, span);
            }
            finish();
        }

        // -- write --

        private void locked() {
            progressingWrites++;
            oldMapping = map[(int) lba];
            if (span == bs) {
                fillFromRequest();
                classify();
            } else if (oldMapping == Mapping.UNMAPPED) {
                buf.fill((byte) 0);
                fillFromRequest();
                classify();
            } else {
                // Part of a block: read-modify-write. The lock keeps the old mapping (and so its block) alive.
                stage = OLD_READ;
                store.read(dataOffset(Mapping.dataBlock(oldMapping)), Mapping.isWhole(oldMapping) ? buf : scratch, this);
            }
        }

        private void oldRead() {
            if (io < 0) {
                fail(Errno.EIO);
                return;
            }
            if (!Mapping.isWhole(oldMapping) && !unpack(scratch, Mapping.slot(oldMapping), buf)) {
                LOG.log(System.Logger.Level.ERROR, "{0}: logical block {1}: {2} is damaged", name, lba, Mapping.describe(oldMapping));
                fail(Errno.EIO);
                return;
            }
            fillFromRequest();
            classify();
        }

        private void fillFromRequest() {
            if (request.kind == Kind.ZERO) {
                buf.asSlice(inBlock, span).fill((byte) 0);
            } else {
                MemorySegment.copy(request.data, dataAt, buf, inBlock, span);
            }
        }

        private void classify() {
            if (MemorySegment.mismatch(buf, 0, bs, zeros, 0, bs) == -1) {
                newMapping = Mapping.UNMAPPED;
                counters.zeroBlocks++;
                remap();
                return;
            }
            if (index == null && !options.compress()) {
                whole();
                return;
            }
            stage = HEAVY_DONE;
            if (worker != null) {
                worker.execute(heavy); // comes back through the loop executor
            } else {
                heavy();
                afterHeavy();
            }
        }

        /**
         * Fingerprint and compression, the CPU-heavy part; touches only this op's buffers, so it may run on a worker.
         * Compression is tried even when dedup may then share the block: one trip to the worker, not two.
         */
        private void heavy() {
            heavyError = null;
            try {
                if (index != null) {
                    fingerprint.of(buf, fp);
                }
                fragmentLength = options.compress() ? compressor.compress(sb.codec(), buf, comp, PackedBlock.maxFragment(bs)) : -1;
            } catch (RuntimeException e) {
                heavyError = e; // reported on the loop, where the op can fail cleanly
            }
            if (worker != null) {
                loop.execute(back);
            }
        }

        private void afterHeavy() {
            if (heavyError != null) {
                LOG.log(System.Logger.Level.ERROR, name + ": hashing or compressing logical block " + lba + " failed", heavyError);
                fail(Errno.EIO);
                return;
            }
            if (index != null) {
                fpHi = fp[0];
                fpLo = fp[1];
                long c = index.find(fpHi, fpLo);
                if (c != Mapping.UNMAPPED && shareable(c)) {
                    candidate = c;
                    pinned = Mapping.dataBlock(c);
                    space.pin(pinned);
                    stage = VERIFY;
                    store.read(dataOffset(pinned), Mapping.isWhole(c) ? scratch : candidateBlock, this);
                    return;
                }
            }
            store();
        }

        /** An index entry may be stale: only a live block of the same kind can be shared. */
        private boolean shareable(long c) {
            long b = Mapping.dataBlock(c);
            return space.isLive(b) && space.isPacked(b) != Mapping.isWhole(c) && space.refs(b) < SpaceMap.MAX_REFS;
        }

        private void verify() {
            boolean same = io >= 0
                    && (Mapping.isWhole(candidate) || unpack(candidateBlock, Mapping.slot(candidate), scratch))
                    && MemorySegment.mismatch(buf, 0, bs, scratch, 0, bs) == -1
                    && space.refs(pinned) > 0 && space.refs(pinned) < SpaceMap.MAX_REFS;
            if (same) {
                shared = true;
                newMapping = candidate;
                counters.dedupHits++;
                remap(); // takes its reference before the pin goes
                return;
            }
            counters.dedupCompareMismatches++;
            space.unpin(pinned);
            pinned = -1;
            store();
        }

        private void store() {
            if (fragmentLength > 0) {
                progressingWrites--;
                addToBin(this);
                return;
            }
            whole();
        }

        private void whole() {
            stage = WHOLE;
            long b = space.allocate(false);
            if (b < 0) {
                if (!waitForSpace(this)) {
                    LOG.log(System.Logger.Level.WARNING, "{0}: no space left for logical block {1}", name, lba);
                    fail(Errno.ENOSPC);
                }
                return;
            }
            reserved = b;
            stage = WROTE;
            store.write(dataOffset(b), buf, this);
        }

        private void wrote() {
            if (io < 0) {
                LOG.log(System.Logger.Level.WARNING, "{0}: writing data block {1} failed: {2}", name, reserved, Errno.name(io));
                fail(Errno.EIO);
                return;
            }
            counters.wholeBlocksWritten++;
            newMapping = Mapping.whole(reserved);
            remap();
        }

        /** Data is on the store (or the block is zero or shared): point the map at it. */
        private void remap() {
            stage = REMAP;
            if (newMapping != Mapping.UNMAPPED) {
                space.ref(Mapping.dataBlock(newMapping));
            }
            reserved = -1;
            map[(int) lba] = newMapping;
            if (oldMapping != Mapping.UNMAPPED) {
                space.unref(Mapping.dataBlock(oldMapping));
                mappedBlocks--;
                if (space.manyPending()) {
                    requestCommit(); // freed blocks come back as kept ones only through a commit
                }
            }
            journalAppend(lba, newMapping);
            if (newMapping != Mapping.UNMAPPED) {
                mappedBlocks++;
            }
            if (pinned >= 0) {
                space.unpin(pinned);
                pinned = -1;
            }
            if (index != null && newMapping != Mapping.UNMAPPED && !shared) {
                index.put(fpHi, fpLo, newMapping);
            }
            finish();
        }

        private void finish() {
            stage = FINISH;
            if (!isRead()) {
                progressingWrites--;
                unlock(lba);
            }
            Request r = request;
            request = null;
            freeOps.add(this);
            r.blockDone(result);
        }

        /** Called by the packed block this op's fragment went into, once it is written (or failed). */
        void packed(long block, int r) {
            progressingWrites++;
            if (r < 0) {
                fail(Errno.EIO);
                return;
            }
            newMapping = Mapping.fragment(block, slot);
            stage = REMAP;
            ready.add(this);
        }
    }

    /** Decompresses fragment {@code slot} of a packed block into {@code into}; false if the block is damaged. */
    private boolean unpack(MemorySegment packed, int slot, MemorySegment into) {
        if (PackedBlock.invalid(packed, slot, bs) != null) {
            return false;
        }
        return compressor.decompress(PackedBlock.codec(packed), packed, PackedBlock.offset(packed, slot),
                PackedBlock.length(packed, slot), into);
    }

    private long dataOffset(long dataBlock) {
        return sb.offsetOf(sb.dataStart() + dataBlock);
    }

    // ---- packing ----

    /** A packed block being filled with compressed fragments, then written once. */
    private final class Bin implements Step, IoCompletion {
        final MemorySegment block = arena.allocate(bs, 4096);
        final BlockOp[] ops = new BlockOp[PackedBlock.MAX_FRAGMENTS];
        int count;
        int used;
        long reserved = -1;
        int io;
        boolean written;

        void reset() {
            PackedBlock.start(block, sb.codec());
            count = 0;
            used = PackedBlock.HEADER;
            reserved = -1;
            written = false;
        }

        boolean fits(int length) {
            return count < PackedBlock.MAX_FRAGMENTS && used + length <= bs;
        }

        @Override
        public void complete(int r) {
            io = r;
            written = true;
            ready.add(this);
            drain();
        }

        @Override
        public void resume() {
            if (!written) {
                long b = space.allocate(true);
                if (b < 0) {
                    if (!waitForSpace(this)) {
                        LOG.log(System.Logger.Level.WARNING, "{0}: no space left for a packed block of {1} fragments", name, count);
                        finishAll(-1, Errno.ENOSPC);
                    }
                    return;
                }
                reserved = b;
                store.write(dataOffset(b), block, this);
                return;
            }
            if (io < 0) {
                LOG.log(System.Logger.Level.WARNING, "{0}: writing packed data block {1} failed: {2}", name, reserved, Errno.name(io));
                space.unreserve(reserved);
                finishAll(-1, Errno.EIO);
                return;
            }
            counters.packedBlocksWritten++;
            finishAll(reserved, 0);
        }

        private void finishAll(long b, int r) {
            for (int i = 0; i < count; i++) {
                BlockOp op = ops[i];
                ops[i] = null;
                op.packed(b, r);
            }
            freeBins.add(this);
        }
    }

    private void addToBin(BlockOp op) {
        if (bin != null && !bin.fits(op.fragmentLength)) {
            sealBin();
        }
        if (bin == null) {
            bin = freeBins.isEmpty() ? new Bin() : freeBins.poll();
            bin.reset();
        }
        MemorySegment.copy(op.comp, 0, bin.block, bin.used, op.fragmentLength);
        op.slot = PackedBlock.add(bin.block, bin.used, op.fragmentLength);
        bin.used += op.fragmentLength;
        bin.ops[bin.count++] = op;
        counters.compressedBlocks++;
        counters.compressedBytes += op.fragmentLength;
        if (bin.count == PackedBlock.MAX_FRAGMENTS) {
            sealBin();
        }
    }

    private void sealBin() {
        Bin b = bin;
        bin = null;
        ready.add(b);
    }

    // ---- journal and commit ----

    private void journalAppend(long lba, long mapping) {
        if (openJournal == null) {
            openJournal = freeJournal.isEmpty() ? arena.allocate(bs, 4096) : freeJournal.poll();
            JournalBlock.clear(openJournal);
        }
        JournalBlock.add(openJournal, lba, mapping);
        if (JournalBlock.count(openJournal) == journalEntries) {
            closeJournalBlock();
            if (closedJournal.size() >= Math.max(1, sb.journalBlocks() / 4)) {
                requestCommit(); // bound what a crash can lose and what waits in memory
            }
        }
    }

    private void closeJournalBlock() {
        closedJournal.add(openJournal);
        openJournal = null;
        closedSeq++;
    }

    private boolean journalDirty() {
        return openJournal != null || !closedJournal.isEmpty();
    }

    /**
     * Asks for a commit. It starts from the scheduler, never inside the step that asked: a checkpoint must see the
     * map and reference counts between steps, not halfway through a remap.
     */
    private void requestCommit() {
        commit.wanted = true;
        if (!commit.running && !commit.startQueued) {
            commit.startQueued = true;
            ready.add(commit);
        }
    }

    /**
     * Makes the journal durable after the data it points to: flush, write the sealed journal blocks (or a whole
     * checkpoint when the ring would overflow), flush; then complete the FLUSH requests it covers and free the
     * blocks it unmapped.
     */
    private final class Commit implements Step, IoCompletion {
        static final int DATA_FLUSHED = 1;
        static final int META_WRITTEN = 2;
        static final int DURABLE = 3;
        static final int HOLES_PUNCHED = 4;

        boolean running;
        boolean wanted;
        boolean startQueued;
        boolean metadataDurable;
        int stage;
        int outstanding;
        int io;
        boolean withCheckpoint;
        long sealedSeq;
        final ArrayList<MemorySegment> blocks = new ArrayList<>();
        final LongList holes = new LongList();

        void begin() {
            running = true;
            wanted = false;
            metadataDurable = false;
            counters.commits++;
            if (openJournal != null) {
                closeJournalBlock();
            }
            blocks.addAll(closedJournal);
            closedJournal.clear();
            sealedSeq = closedSeq;
            withCheckpoint = sealedSeq - checkpointSeq > sb.journalBlocks() / 2;
            if (withCheckpoint) {
                encodeCheckpoint(sealedSeq);
            }
            space.sealPending();
            flushInCommit.addAll(flushWaiting);
            flushWaiting.clear();
            io = 0;
            stage = DATA_FLUSHED;
            outstanding = 1;
            store.flush(this);
        }

        @Override
        public void complete(int r) {
            if (r < 0 && io == 0) {
                io = r;
            }
            if (--outstanding <= 0) {
                ready.add(this);
                drain();
            }
        }

        @Override
        public void resume() {
            if (startQueued) {
                startQueued = false;
                if (!running && broken == 0) {
                    begin();
                }
                return;
            }
            if (io < 0 && stage != HOLES_PUNCHED) {
                failed();
                return;
            }
            switch (stage) {
                case DATA_FLUSHED -> writeMetadata();
                case META_WRITTEN -> {
                    stage = DURABLE;
                    outstanding = 1;
                    store.flush(this);
                }
                case DURABLE -> durable();
                case HOLES_PUNCHED -> done();
                default -> throw new IllegalStateException("commit stage " + stage);
            }
        }

        private void writeMetadata() {
            stage = META_WRITTEN;
            // One extra count so completions inside the calls cannot finish the stage before all are issued.
            outstanding = 1;
            if (withCheckpoint) {
                outstanding++;
                store.write(sb.offsetOf(sb.checkpointStart(1 - activeArea)), checkpointBuffer, this);
            } else {
                long seq = sealedSeq - blocks.size();
                for (MemorySegment b : blocks) {
                    seq++;
                    JournalBlock.seal(b, sb.uuid(), generation, seq);
                    outstanding++;
                    store.write(sb.offsetOf(sb.journalStart() + seq % sb.journalBlocks()), b, this);
                }
            }
            complete(0);
        }

        private void durable() {
            metadataDurable = true;
            checkpointWritten();
            if (withCheckpoint) {
                generation++;
                activeArea = 1 - activeArea;
                checkpointSeq = sealedSeq;
                counters.checkpointsWritten++;
            } else {
                counters.journalBlocksWritten += blocks.size();
            }
            freeJournal.addAll(blocks);
            blocks.clear();
            while (!flushInCommit.isEmpty()) {
                flushInCommit.poll().complete(Errno.OK);
            }
            // Freed blocks are reused only after their holes are punched, so a late punch never hits new data.
            holes.clear();
            space.takeCommitted(holes);
            stage = HOLES_PUNCHED;
            outstanding = 1;
            for (int i = 0; i < holes.size(); ) {
                long first = holes.get(i);
                int n = 1;
                while (i + n < holes.size() && holes.get(i + n) == first + n) {
                    n++;
                }
                outstanding++;
                counters.blocksPunched += n;
                store.deallocate(dataOffset(first), (long) n * bs, this);
                i += n;
            }
            complete(0);
        }

        private void done() {
            if (io < 0) {
                LOG.log(System.Logger.Level.DEBUG, "{0}: punching freed blocks failed ({1}); they are reused all the same", name, Errno.name(io));
            }
            for (int i = 0; i < holes.size(); i++) {
                space.unreserve(holes.get(i));
            }
            running = false;
            while (!spaceWaiters.isEmpty()) {
                ready.add(spaceWaiters.poll());
            }
            if (wanted || !flushWaiting.isEmpty() || closedJournal.size() >= Math.max(1, sb.journalBlocks() / 4)) {
                requestCommit();
            }
        }

        private void failed() {
            broken = io;
            running = false;
            checkpointWritten(); // every write of the stage has completed
            LOG.log(System.Logger.Level.ERROR, "{0}: commit failed ({1}): the volume stops taking requests; "
                    + "reopening recovers the last durable state", name, Errno.name(io));
            while (!flushInCommit.isEmpty()) {
                flushInCommit.poll().complete(Errno.EIO);
            }
            while (!flushWaiting.isEmpty()) {
                flushWaiting.poll().complete(Errno.EIO);
            }
            while (!spaceWaiters.isEmpty()) {
                ready.add(spaceWaiters.poll());
            }
        }
    }

    /**
     * The counters as the module reports them on the control socket: names to numbers, stable for scripts.
     * {@code compression_ratio} is the bytes of the blocks stored compressed over the bytes their fragments take;
     * {@code reduction_ratio} mapped logical bytes over physical bytes in use.
     */
    public java.util.Map<String, Object> report() {
        java.util.Map<String, Object> r = new java.util.LinkedHashMap<>();
        ReduceCounters c = counters;
        r.put("logical_bytes_written", c.logicalBytesWritten());
        r.put("logical_bytes_mapped", mappedBlocks * bs);
        r.put("physical_bytes_used", physicalBytesUsed());
        r.put("physical_bytes_free", physicalBytesFree());
        r.put("zero_blocks", c.zeroBlocks());
        r.put("dedup_hits", c.dedupHits());
        r.put("dedup_compare_mismatches", c.dedupCompareMismatches());
        r.put("compressed_blocks", c.compressedBlocks());
        r.put("compressed_bytes", c.compressedBytes());
        r.put("compression_ratio", c.compressedBytes() == 0 ? 1.0 : (double) c.compressedBlocks() * bs / c.compressedBytes());
        r.put("reduction_ratio", physicalBytesUsed() == 0 ? 1.0 : (double) mappedBlocks * bs / physicalBytesUsed());
        r.put("packed_blocks_written", c.packedBlocksWritten());
        r.put("whole_blocks_written", c.wholeBlocksWritten());
        r.put("journal_blocks_written", c.journalBlocksWritten());
        r.put("checkpoints_written", c.checkpointsWritten());
        r.put("commits", c.commits());
        r.put("blocks_punched", c.blocksPunched());
        r.put("free_blocks_kept", space.keptBlocks());
        r.put("flush_requests", c.flushRequests());
        return r;
    }

    /** True while requests or a commit are in flight. */
    public boolean busy() {
        return commit.running || !queued.isEmpty() || freeOps.size() != options.maxBlockOps();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (busy()) {
            LOG.log(System.Logger.Level.WARNING, "{0}: closed with requests in flight; unflushed writes are lost", name);
            return; // their buffers stay valid until the JVM reclaims the arena
        }
        arena.close();
    }
}
