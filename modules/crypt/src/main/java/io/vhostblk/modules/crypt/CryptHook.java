package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.linux.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The crypt module on one queue. Guest sector {@code s} is image byte {@code payloadOffset + 512 s}, encrypted
 * with IV sector {@code s} (aes-xts-plain64, as dm-crypt and QEMU's LUKS driver do).
 *
 * <ul>
 *   <li>READ: moved past the header at ①, decrypted in place in the guest's buffers at ②.</li>
 *   <li>WRITE up to {@link #FAST_WRITE_MAX}: encrypted at ① into chunks of the queue's {@link BouncePool} and
 *       passed on with an iovec over them (the guest's buffers are only read); at ② the guest's iovec and
 *       offset are put back and the chunks returned. Larger writes, and writes finding the pool exhausted, go
 *       to the {@link LargeWriteLane}.</li>
 *   <li>WRITE_ZEROES: encrypted zeros through the lane.</li>
 *   <li>DISCARD: passed on (moved past the header) with {@code allow-discard}; otherwise answered OK without
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
    private final long payloadOffset;
    private final int sectorSize;
    private final boolean allowDiscard;
    private final Arena arena;
    private final SectorCrypt crypt;
    private final BouncePool pool;
    private final LargeWriteLane lane;
    private final IovCursor cursor = new IovCursor();
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

    /** The guest's view of a write that went on with a bounce iovec, to be put back at ②. */
    private static final class WriteState {
        final MemorySegment bounceIov;
        final int[] chunks = new int[MAX_CHUNKS];
        int chunkCount;
        MemorySegment guestIov;
        int guestIovCount;

        WriteState(Arena arena) {
            bounceIov = arena.allocate(16L * MAX_CHUNKS, 8);
        }
    }

    CryptHook(String label, HookContext context, XtsAes256 cipher, long payloadOffset, int sectorSize,
              boolean allowDiscard, long poolBytes) {
        this.label = label;
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
                    r.set(BlockOp.DISCARD, r.offset() + payloadOffset, r.length(), r.iov(), r.iovCount(), r.unmap());
                    yield HookAction.PASS;
                }
                case FLUSH -> HookAction.PASS;
            };
        } catch (RuntimeException e) {
            // Never let an exception reach the compat-lib: it would take the module out of the chain, and the
            // guest's next requests would go to the disk unencrypted and over the LUKS header.
            return fail(r, e);
        }
    }

    private HookAction read(BlockRequest r) {
        if (!aligned(r) || IovCursor.totalLength(r.iov(), r.iovCount()) < r.length()) {
            return refuse(r);
        }
        r.set(BlockOp.READ, r.offset() + payloadOffset, r.length(), r.iov(), r.iovCount(), false);
        return HookAction.PASS;
    }

    private HookAction write(BlockRequest r) {
        long length = r.length();
        if (!aligned(r) || IovCursor.totalLength(r.iov(), r.iovCount()) < length) {
            return refuse(r);
        }
        int need = BouncePool.chunksFor(length);
        if (length > FAST_WRITE_MAX || need > pool.freeChunks()) {
            lane.enqueue(r);
            return HookAction.TAKE_OVER;
        }
        WriteState st = state(r.slot());
        try {
            return encryptToPool(r, st);
        } catch (RuntimeException e) {
            giveBack(st);
            throw e;
        }
    }

    private HookAction encryptToPool(BlockRequest r, WriteState st) {
        long length = r.length();
        cursor.reset(r.iov(), r.iovCount());
        long firstSector = r.offset() / XtsAes256.IV_SECTOR;
        int entries = 0;
        long entryEnd = -1;
        st.chunkCount = 0;
        for (long done = 0; done < length; ) {
            int c = pool.take();
            st.chunks[st.chunkCount++] = c;
            long n = Math.min(BouncePool.CHUNK, length - done);
            crypt.encrypt(cursor, firstSector + done / XtsAes256.IV_SECTOR, n, pool.area(), (long) c * BouncePool.CHUNK);
            long at = pool.address(c);
            if (entries > 0 && at == entryEnd) {
                IovCursor.put(st.bounceIov, entries - 1, IovCursor.base(st.bounceIov, entries - 1),
                        IovCursor.length(st.bounceIov, entries - 1) + n);
            } else {
                IovCursor.put(st.bounceIov, entries++, at, n);
            }
            entryEnd = at + n;
            done += n;
        }
        st.guestIov = r.iov();
        st.guestIovCount = r.iovCount();
        writesEncrypted++;
        bytesEncrypted += length;
        r.set(BlockOp.WRITE, r.offset() + payloadOffset, length, st.bounceIov, entries, false);
        return HookAction.PASS;
    }

    @Override
    public long afterDriver(BlockRequest r, long result) {
        try {
            switch (r.op()) {
                case READ -> {
                    long guestOffset = r.offset() - payloadOffset;
                    r.set(BlockOp.READ, guestOffset, r.length(), r.iov(), r.iovCount(), false);
                    if (result < 0) {
                        return result;
                    }
                    cursor.reset(r.iov(), r.iovCount());
                    if (!crypt.decryptInPlace(cursor, guestOffset / XtsAes256.IV_SECTOR, r.length())) {
                        errors++;
                        return -Errno.EIO;
                    }
                    readsDecrypted++;
                    bytesDecrypted += r.length();
                }
                case WRITE -> {
                    WriteState st = writes[r.slot()];
                    giveBack(st);
                    r.set(BlockOp.WRITE, r.offset() - payloadOffset, r.length(), st.guestIov, st.guestIovCount, false);
                    st.guestIov = null;
                }
                case DISCARD -> r.set(BlockOp.DISCARD, r.offset() - payloadOffset, r.length(), r.iov(), r.iovCount(), r.unmap());
                default -> {
                }
            }
            return result;
        } catch (RuntimeException e) {
            errors++;
            logError("completion of " + r, e);
            return -Errno.EIO;
        }
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
        r.result(-Errno.EINVAL);
        return HookAction.COMPLETE;
    }

    private HookAction fail(BlockRequest r, RuntimeException e) {
        errors++;
        logError("pre-call of " + r, e);
        r.result(-Errno.EIO);
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
            st = new WriteState(arena);
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
