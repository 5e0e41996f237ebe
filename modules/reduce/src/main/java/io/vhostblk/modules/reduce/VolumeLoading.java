package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * {@link VolumeState#load} without waiting: the superblock, both checkpoint areas and the journal are read one
 * completion after the other, so a volume served by a queue opens on that queue's event loop through the layers
 * beneath the module (crypt, RBD, fault injection) and the loop never blocks. Each read's completion starts the
 * next; a store that completes inside the call is fine for the few reads before the journal, and the journal
 * replay runs as a loop (a trampoline), so a long journal never deepens the stack.
 */
final class VolumeLoading implements IoCompletion {

    /** The end of a load: exactly one of the two is called, on the store's thread. */
    interface Loaded {
        void loaded(VolumeState state);

        void failed(ReduceException e);
    }

    private enum Stage { SUPERBLOCK, HEADER, PAYLOAD, JOURNAL }

    private final BackingStore store;
    private final String name;
    private final Loaded done;
    private final Arena arena = Arena.ofShared();
    private Stage stage = Stage.SUPERBLOCK;
    private Superblock sb;
    private VolumeState.Choice choice;
    private VolumeState state;
    private MemorySegment block;
    private MemorySegment payload;
    private int area;
    private long seq;
    // Trampoline for the journal: a read that completes inside the call is taken up by the loop in readJournal.
    private boolean inCall;
    private boolean completedInCall;
    private int inlineResult;
    private boolean ended;

    private VolumeLoading(BackingStore store, String name, Loaded done) {
        this.store = store;
        this.name = name;
        this.done = done;
    }

    /** Starts loading; {@code done} hears the result (possibly before this returns). */
    static void start(BackingStore store, String name, Loaded done) {
        new VolumeLoading(store, name, done).begin();
    }

    private void begin() {
        if (store.size() < Superblock.MIN_BLOCK_SIZE) {
            fail(new ReduceException(name + ": " + store.size() + " bytes, too small to hold a reduce volume"));
            return;
        }
        block = arena.allocate(Superblock.MIN_BLOCK_SIZE, 4096);
        store.read(0, block, this);
    }

    @Override
    public void complete(int result) {
        if (inCall) {
            completedInCall = true;
            inlineResult = result;
            return;
        }
        try {
            step(result);
        } catch (ReduceException e) {
            fail(e);
        } catch (RuntimeException e) {
            if (ended) {
                throw e; // thrown by the caller's own completion: not the load's to report
            }
            // A decoder bug must not leave the queue's requests waiting forever: fail the open, keep the cause.
            fail(new ReduceException(name + ": opening the volume failed: " + e, e));
        }
    }

    private void step(int result) throws ReduceException {
        if (result < 0) {
            throw new ReduceException(name + ": reading the volume's " + what() + " failed: " + Errno.name(result));
        }
        switch (stage) {
            case SUPERBLOCK -> {
                sb = VolumeState.superblock(store.size(), block, name);
                choice = new VolumeState.Choice(sb, name);
                block = arena.allocate(sb.blockSize(), 4096);
                area = 0;
                readHeader();
            }
            case HEADER -> {
                if (choice.header(area, block)) {
                    stage = Stage.PAYLOAD;
                    if (payload == null) {
                        payload = arena.allocate(Checkpoint.bytes(sb) - sb.blockSize(), 4096);
                    }
                    store.read(sb.offsetOf(sb.checkpointStart(area) + 1), payload, this);
                } else {
                    nextArea();
                }
            }
            case PAYLOAD -> {
                choice.payload(area, payload);
                nextArea();
            }
            case JOURNAL -> {
                if (journalBlockRead()) {
                    readJournal();
                }
            }
        }
    }

    private String what() {
        return switch (stage) {
            case SUPERBLOCK -> "superblock";
            case HEADER -> "checkpoint header " + (area == 0 ? "A" : "B");
            case PAYLOAD -> "checkpoint " + (area == 0 ? "A" : "B");
            case JOURNAL -> "journal block " + seq;
        };
    }

    private void readHeader() {
        stage = Stage.HEADER;
        store.read(sb.offsetOf(sb.checkpointStart(area)), block, this);
    }

    private void nextArea() throws ReduceException {
        if (area == 0) {
            area = 1;
            readHeader();
            return;
        }
        state = choice.chosen();
        payload = null;
        stage = Stage.JOURNAL;
        seq = state.checkpointSeq;
        readJournal();
    }

    /** Reads journal blocks after {@code seq} until one is not the next, or one completes later (then it resumes). */
    private void readJournal() throws ReduceException {
        while (true) {
            seq++;
            if (seq > state.lastJournalSeq()) {
                finish();
                return;
            }
            inCall = true;
            completedInCall = false;
            store.read(state.journalOffset(seq), block, this);
            inCall = false;
            if (!completedInCall) {
                return; // complete() continues with step()
            }
            if (inlineResult < 0) {
                throw new ReduceException(name + ": reading the volume's journal block " + seq + " failed: "
                        + Errno.name(inlineResult));
            }
            if (!journalBlockRead()) {
                return;
            }
        }
    }

    /** Applies the block just read; false when the load ended (the journal ended, or it failed). */
    private boolean journalBlockRead() throws ReduceException {
        if (state.replay(block, seq, name)) {
            return true;
        }
        finish();
        return false;
    }

    private void finish() {
        ended = true;
        arena.close();
        done.loaded(state);
    }

    private void fail(ReduceException e) {
        ended = true;
        if (arena.scope().isAlive()) {
            arena.close();
        }
        done.failed(e);
    }
}
