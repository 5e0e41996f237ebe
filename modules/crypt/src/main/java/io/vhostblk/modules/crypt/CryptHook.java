package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.BlockResult;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;

import java.lang.foreign.Arena;
import java.util.Arrays;

/**
 * The crypt module on one queue. Guest sector {@code s} is image byte {@code payloadOffset + 512 s}, encrypted
 * with IV sector {@code s} (aes-xts-plain64, as dm-crypt and QEMU's LUKS driver do). The guest's request is
 * never changed: what goes below is a child request ({@link HookContext#child}).
 *
 * <ul>
 *   <li>READ: a child READ past the header into the guest's buffers; decrypted in place when it completes.</li>
 *   <li>WRITE up to {@link #FAST_WRITE_MAX}: encrypted at ① into chunks of the queue's {@link BouncePool}; a
 *       child WRITE over them goes below (the guest's buffers are only read); the chunks are returned when it
 *       completes. Larger writes, and writes finding the pool exhausted, go to the {@link LargeWriteLane}.</li>
 *   <li>WRITE_ZEROES: encrypted zeros through the lane.</li>
 *   <li>DISCARD: a child DISCARD past the header with {@code allow-discard}; otherwise answered OK without
 *       touching the disk, see {@link CryptSettings#allowDiscard()}.</li>
 *   <li>FLUSH: passed on.</li>
 * </ul>
 * Runs on the queue's event loop only; allocates nothing per request once each request slot has been seen.
 */
final class CryptHook implements BlockHook {

    private static final System.Logger LOG = System.getLogger(CryptHook.class.getName());
    /** Largest write encrypted into the pool at ①; larger ones are cut into pieces by the lane. */
    static final long FAST_WRITE_MAX = 1024 * 1024;
    private static final int MAX_CHUNKS = BouncePool.chunksFor(FAST_WRITE_MAX);
    private static final long LOG_EVERY_NANOS = 1_000_000_000L;

    private final String label;
    private final HookContext context;
    private final long payloadOffset;
    private final int sectorSize;
    private final boolean allowDiscard;
    private final Arena arena;
    private final SectorCrypt crypt;
    private final BouncePool pool;
    private final LargeWriteLane lane;
    private final DriverCompletion readDone = this::readDone;
    private final DriverCompletion writeDone = this::writeDone;
    private final DriverCompletion passUp = this::passUp;
    private WriteState[] writes = new WriteState[0];
    private long lastErrorLog;

    // Statistics: written by the event loop only, read by report() (a moment old at worst).
    long readsDecrypted;
    long writesEncrypted;
    long bytesDecrypted;
    long bytesEncrypted;
    long discardsDropped;
    long refused;
    long errors;

    /** The bounce chunks a write's child request carries, returned when it completes. */
    private static final class WriteState {
        final IoVector bounce = new IoVector(MAX_CHUNKS);
        final int[] chunks = new int[MAX_CHUNKS];
        int chunkCount;
    }

    CryptHook(String label, HookContext context, XtsAes256 cipher, long payloadOffset, int sectorSize,
              boolean allowDiscard, long poolBytes) {
        this.label = label;
        this.context = context;
        this.payloadOffset = payloadOffset;
        this.sectorSize = sectorSize;
        this.allowDiscard = allowDiscard;
        // Shared: the module instance closes it from the control thread once the device has no request left.
        this.arena = Arena.ofShared();
        this.crypt = new SectorCrypt(cipher, sectorSize, arena.allocate(4096, 4096));
        this.pool = new BouncePool(arena, poolBytes);
        this.lane = new LargeWriteLane(context, crypt, payloadOffset, arena);
    }

    @Override
    public HookAction beforeDriver(BlockRequest r) {
        try {
            return switch (r.op()) {
                case READ -> read(r);
                case WRITE -> write(r);
                case WRITE_ZEROES -> {
                    if (!aligned(r)) {
                        yield refuse(r);
                    }
                    lane.enqueue(r);
                    yield HookAction.TAKE_OVER;
                }
                case DISCARD -> {
                    if (!allowDiscard) {
                        discardsDropped++;
                        r.result(0);
                        yield HookAction.COMPLETE;
                    }
                    below(r, BlockOp.DISCARD, IoVector.NONE, r.unmap(), passUp);
                    yield HookAction.TAKE_OVER;
                }
                case FLUSH -> HookAction.PASS;
            };
        } catch (RuntimeException e) {
            // Never let an exception reach the compat-lib: it would take the module out of the chain, and the
            // guest's next requests would go to the disk unencrypted and over the LUKS header.
            return fail(r, e);
        }
    }

    /** Sends r's child below: same range moved past the header, with {@code data}. */
    private void below(BlockRequest r, BlockOp op, IoVector data, boolean unmap, DriverCompletion done) {
        BlockRequest child = context.child(r).set(op, r.offset() + payloadOffset, r.length(), data, unmap);
        context.submitBelow(child, done);
    }

    private HookAction read(BlockRequest r) {
        if (!aligned(r) || r.data().length() < r.length()) {
            return refuse(r);
        }
        below(r, BlockOp.READ, r.data(), false, readDone);
        return HookAction.TAKE_OVER;
    }

    private void readDone(BlockRequest child, long result) {
        BlockRequest r = child.parent();
        long res = result;
        try {
            if (res >= 0) {
                if (crypt.decryptInPlace(r.data().cursor(), r.offset() / XtsAes256.IV_SECTOR, r.length())) {
                    readsDecrypted++;
                    bytesDecrypted += r.length();
                } else {
                    errors++;
                    res = BlockResult.EIO;
                }
            }
        } catch (RuntimeException e) {
            errors++;
            logError("completion of " + r, e);
            res = BlockResult.EIO;
        }
        context.complete(r, res);
    }

    private HookAction write(BlockRequest r) {
        long length = r.length();
        if (!aligned(r) || r.data().length() < length) {
            return refuse(r);
        }
        int need = BouncePool.chunksFor(length);
        if (length > FAST_WRITE_MAX || need > pool.freeChunks()) {
            lane.enqueue(r);
            return HookAction.TAKE_OVER;
        }
        WriteState st = state(r.slot());
        try {
            encryptToPool(r, st);
            below(r, BlockOp.WRITE, st.bounce, false, writeDone);
        } catch (RuntimeException e) {
            giveBack(st);
            throw e;
        }
        return HookAction.TAKE_OVER;
    }

    /** Encrypts the guest's data into pool chunks and points the state's bounce vector at them (neighbours merged). */
    private void encryptToPool(BlockRequest r, WriteState st) {
        long length = r.length();
        IoVector.Cursor cursor = r.data().cursor();
        long firstSector = r.offset() / XtsAes256.IV_SECTOR;
        st.chunkCount = 0;
        st.bounce.clear(false);
        long runStart = -1;
        long runLength = 0;
        for (long done = 0; done < length; ) {
            int c = pool.take();
            st.chunks[st.chunkCount++] = c;
            long n = Math.min(BouncePool.CHUNK, length - done);
            long at = (long) c * BouncePool.CHUNK;
            crypt.encrypt(cursor, firstSector + done / XtsAes256.IV_SECTOR, n, pool.area(), at);
            if (runStart >= 0 && runStart + runLength == at) {
                runLength += n;
            } else {
                if (runStart >= 0) {
                    st.bounce.add(pool.area(), runStart, runLength);
                }
                runStart = at;
                runLength = n;
            }
            done += n;
        }
        st.bounce.add(pool.area(), runStart, runLength);
        writesEncrypted++;
        bytesEncrypted += length;
    }

    private void writeDone(BlockRequest child, long result) {
        BlockRequest r = child.parent();
        giveBack(writes[r.slot()]);
        context.complete(r, result);
    }

    private void passUp(BlockRequest child, long result) {
        context.complete(child.parent(), result);
    }

    private void giveBack(WriteState st) {
        for (int i = 0; i < st.chunkCount; i++) {
            pool.give(st.chunks[i]);
        }
        st.chunkCount = 0;
    }

    /** I/O must cover whole encryption sectors (always true for 512; a 4096-byte LUKS2 image needs 4 KiB guest blocks). */
    private boolean aligned(BlockRequest r) {
        return r.offset() % sectorSize == 0 && r.length() % sectorSize == 0;
    }

    private HookAction refuse(BlockRequest r) {
        refused++;
        logError(r + ": not whole " + sectorSize + "-byte encryption sectors, or the buffers are shorter than the request", null);
        r.result(BlockResult.EINVAL);
        return HookAction.COMPLETE;
    }

    private HookAction fail(BlockRequest r, RuntimeException e) {
        errors++;
        logError("pre-call of " + r, e);
        r.result(BlockResult.EIO);
        return HookAction.COMPLETE;
    }

    private void logError(String what, RuntimeException e) {
        long now = System.nanoTime();
        if (now - lastErrorLog >= LOG_EVERY_NANOS) {
            lastErrorLog = now;
            LOG.log(System.Logger.Level.WARNING, label + " module=crypt: " + what + " (request failed)", e);
        }
    }

    /** The write state for request slot {@code slot}, created the first time the slot writes. */
    private WriteState state(int slot) {
        if (slot >= writes.length) {
            writes = Arrays.copyOf(writes, Math.max(slot + 1, writes.length * 2));
        }
        WriteState st = writes[slot];
        if (st == null) {
            st = new WriteState();
            writes[slot] = st;
        }
        return st;
    }

    int freeChunks() {
        return pool.freeChunks();
    }

    int poolChunks() {
        return pool.chunks();
    }

    long laneServed() {
        return lane.served;
    }

    /** Zeroes the scratch sector and the bounce memory and frees them; the device has no request in flight. */
    void close() {
        crypt.wipe();
        pool.wipe();
        arena.close();
    }
}
