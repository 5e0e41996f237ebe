package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.BlockResult;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.HookContext;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

/**
 * One queue's slow path for writes the bounce pool cannot take at once (larger than
 * {@link CryptHook#FAST_WRITE_MAX}, or arriving while the pool is exhausted) and for WRITE_ZEROES (which must
 * store encrypted zeros: zeros on disk would decrypt to garbage). The hook takes such a request over; the lane
 * encrypts it piece by piece into its own buffer, writes each piece beneath through a request of its own, then
 * flushes (the lane cannot see the guest's cache mode, so it always makes the result durable) and completes
 * the guest's request. Requests are served one at a time, in arrival order.
 */
final class LargeWriteLane implements DriverCompletion {

    private static final System.Logger LOG = System.getLogger(LargeWriteLane.class.getName());
    /** Bytes per piece. */
    static final int PIECE = 1024 * 1024;

    private final HookContext context;
    private final SectorCrypt crypt;
    private final long payloadOffset;
    private final MemorySegment buffer;
    private final IoVector piece = new IoVector(1);
    private final BlockRequest own;
    private IoVector.Cursor cursor;
    private final ArrayDeque<BlockRequest> waiting = new ArrayDeque<>(256);
    private final Runnable driveTask = this::drive;

    private BlockRequest current;
    private long done;
    private long pieceBytes;
    private boolean flushing;
    private boolean busyBelow;
    private boolean resultIn;
    private long lastResult;
    private boolean driving;
    /** Requests served through the lane, for the report. */
    long served;

    LargeWriteLane(HookContext context, SectorCrypt crypt, long payloadOffset, Arena arena) {
        this.context = context;
        this.crypt = crypt;
        this.payloadOffset = payloadOffset;
        this.buffer = arena.allocate(PIECE, 4096);
        this.own = context.newRequest();
    }

    /**
     * Queues {@code request} (a WRITE or WRITE_ZEROES, checked for alignment) and starts it when the lane is
     * free. Never completes it before the caller has returned TAKE_OVER: the work starts from the event loop.
     */
    void enqueue(BlockRequest request) {
        waiting.addLast(request);
        if (current == null && waiting.size() == 1) {
            context.execute(driveTask);
        }
    }

    /** Requests waiting or in progress. */
    int backlog() {
        return waiting.size() + (current == null ? 0 : 1);
    }

    @Override
    public void complete(BlockRequest request, long result) {
        busyBelow = false;
        resultIn = true;
        lastResult = result;
        if (!driving) {
            drive();
        }
    }

    /** Advances the lane as far as it can without waiting; re-entry from a synchronous completion only records it. */
    private void drive() {
        if (driving) {
            return;
        }
        driving = true;
        try {
            while (true) {
                if (current == null) {
                    BlockRequest next = waiting.pollFirst();
                    if (next == null) {
                        return;
                    }
                    begin(next);
                }
                if (busyBelow) {
                    return;
                }
                if (resultIn) {
                    resultIn = false;
                    if (lastResult < 0) {
                        finish(lastResult);
                        continue;
                    }
                    if (flushing) {
                        finish(current.length());
                        continue;
                    }
                    done += pieceBytes;
                }
                if (done == current.length()) {
                    flushing = true;
                    submit(own.set(BlockOp.FLUSH, 0, 0, IoVector.NONE, false));
                    continue;
                }
                pieceBytes = Math.min(PIECE, current.length() - done);
                long sector = (current.offset() + done) / XtsAes256.IV_SECTOR;
                if (current.op() == BlockOp.WRITE_ZEROES) {
                    buffer.asSlice(0, pieceBytes).fill((byte) 0);
                    crypt.encryptInPlace(buffer, 0, sector, pieceBytes);
                } else if (!crypt.encrypt(cursor, sector, pieceBytes, buffer, 0)) {
                    finish(BlockResult.EINVAL);
                    continue;
                }
                submit(own.set(BlockOp.WRITE, payloadOffset + current.offset() + done, pieceBytes,
                        piece.wrap(buffer, 0, pieceBytes, false), false));
            }
        } catch (RuntimeException e) {
            // Nothing may escape to the event loop: the request in progress fails, the lane carries on.
            LOG.log(System.Logger.Level.ERROR, "crypt: large write of " + current + " failed", e);
            if (current != null && !busyBelow) {
                finish(BlockResult.EIO);
            }
            if (!waiting.isEmpty()) {
                context.execute(driveTask);
            }
        } finally {
            driving = false;
        }
    }

    private void begin(BlockRequest request) {
        current = request;
        done = 0;
        pieceBytes = 0;
        flushing = false;
        resultIn = false;
        cursor = request.op() == BlockOp.WRITE ? request.data().cursor() : null;
    }

    private void submit(BlockRequest r) {
        busyBelow = true;
        context.submitBelow(r, this);
    }

    private void finish(long result) {
        BlockRequest r = current;
        current = null;
        served++;
        context.complete(r, result);
    }
}
