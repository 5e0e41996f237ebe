package io.vhostblk.modules.stats;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;

import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * The stats hook of one queue: notes the start time, operation and length of each request by its
 * slot at the pre-call point and records them when the result comes back. The operation is noted
 * on the way down because a module beneath may rewrite the request (zero-detect turns a WRITE
 * into a WRITE_ZEROES); the guest's operation is the one that counts here.
 */
final class StatsHook implements BlockHook {
    private static final BlockOp[] OPS = BlockOp.values();
    /** Slots a queue starts with; guest slots are below the queue size, modules' own above it. */
    private static final int INITIAL_SLOTS = 1024;

    private final LongSupplier clock;
    final OpStats[] ops;
    private long[] startedAt = new long[INITIAL_SLOTS];
    private byte[] opAt = new byte[INITIAL_SLOTS];
    private long[] lengthAt = new long[INITIAL_SLOTS];

    StatsHook(LongSupplier clock, int bucketsPerDoubling) {
        this.clock = clock;
        this.ops = new OpStats[OPS.length];
        for (int i = 0; i < OPS.length; i++) {
            ops[i] = new OpStats(bucketsPerDoubling);
        }
    }

    @Override
    public HookAction beforeDriver(BlockRequest request) {
        int slot = request.slot();
        if (slot >= startedAt.length) {
            grow(slot);
        }
        opAt[slot] = (byte) request.op().ordinal();
        lengthAt[slot] = request.length();
        startedAt[slot] = clock.getAsLong();
        return HookAction.PASS;
    }

    @Override
    public long afterDriver(BlockRequest request, long result) {
        long now = clock.getAsLong();
        int slot = request.slot();
        OpStats s = ops[opAt[slot]];
        s.latency.record(now - startedAt[slot]);
        if (result < 0) {
            s.errors++;
        } else {
            s.bytes += lengthAt[slot];
        }
        return result;
    }

    /** A slot beyond the tables (a module's own request): grow once, not per I/O. */
    private void grow(int slot) {
        int n = Math.max(slot + 1, startedAt.length * 2);
        startedAt = Arrays.copyOf(startedAt, n);
        opAt = Arrays.copyOf(opAt, n);
        lengthAt = Arrays.copyOf(lengthAt, n);
    }
}
