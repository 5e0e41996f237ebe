package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Test calls into a volume over a store that completes inline: each call returns its result. */
final class Sync {

    /** The result of a request, or {@link #PENDING} if it has not completed (the store stopped answering). */
    static final int PENDING = Integer.MIN_VALUE;

    private Sync() {
    }

    private static final class Result implements IoCompletion {
        int value = PENDING;

        @Override
        public void complete(int result) {
            assertEquals(PENDING, value, "completed twice");
            value = result;
        }
    }

    static int write(ReduceVolume v, long offset, byte[] data) {
        Result r = new Result();
        MemorySegment seg = Arena.ofAuto().allocate(data.length, 4096);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, seg, 0, data.length);
        v.write(offset, seg, r);
        return r.value;
    }

    static int zero(ReduceVolume v, long offset, long length) {
        Result r = new Result();
        v.writeZeroes(offset, length, r);
        return r.value;
    }

    static int discard(ReduceVolume v, long offset, long length) {
        Result r = new Result();
        v.discard(offset, length, r);
        return r.value;
    }

    static int flush(ReduceVolume v) {
        Result r = new Result();
        v.flush(r);
        return r.value;
    }

    static byte[] read(ReduceVolume v, long offset, int length) {
        Result r = new Result();
        MemorySegment seg = Arena.ofAuto().allocate(length, 4096);
        v.read(offset, seg, r);
        assertEquals(0, r.value, "read at " + offset);
        return seg.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    /**
     * Opens with the asynchronous open the module uses (over a store that completes inline, it is done on return);
     * {@code journalEntries} as in {@link ReduceVolume#limitJournalEntries}.
     */
    static ReduceVolume open(BackingStore store, String name, ReduceVolume.Options options, int journalEntries)
            throws ReduceException {
        ReduceVolume[] opened = new ReduceVolume[1];
        ReduceException[] failed = new ReduceException[1];
        ReduceVolume.open(store, name, options, new ReduceVolume.Opened() {
            @Override
            public void opened(ReduceVolume volume) {
                assertTrue(opened[0] == null && failed[0] == null, "open ended twice");
                opened[0] = volume;
            }

            @Override
            public void failed(ReduceException e) {
                assertTrue(opened[0] == null && failed[0] == null, "open ended twice");
                failed[0] = e;
            }
        });
        if (failed[0] != null) {
            throw failed[0];
        }
        assertTrue(opened[0] != null, "the open did not finish over a store that completes inline");
        opened[0].limitJournalEntries(journalEntries);
        return opened[0];
    }

    static void ok(int result) {
        assertEquals(0, result, "request result");
    }

    static void clean(ReduceCheck.Report report) {
        assertTrue(report.clean(), () -> "check found: " + report.problems());
    }
}
