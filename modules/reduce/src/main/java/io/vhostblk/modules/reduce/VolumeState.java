package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * A volume's metadata as found on its image: the superblock, the newest valid checkpoint and the journal replayed
 * on top of it. Loading only reads; {@link ReduceVolume#open} then makes the result the new durable state.
 */
final class VolumeState {

    final Superblock sb;
    final long[] map;
    /** Reference counts as replayed (checkpoint counts adjusted by every journal entry). */
    final int[] refs;
    /** Reference counts as the chosen checkpoint stored them, before replay. */
    final int[] checkpointRefs;
    /** Map as the chosen checkpoint stored it, before replay. */
    final long[] checkpointMap;
    final int area;
    final long generation;
    final long checkpointSeq;
    long lastSeq;
    int replayedBlocks;
    int replayedEntries;
    final List<String> notes = new ArrayList<>();

    private VolumeState(Superblock sb, long[] map, int[] refs, int area, long generation, long checkpointSeq) {
        this.sb = sb;
        this.map = map;
        this.refs = refs;
        this.checkpointRefs = refs.clone();
        this.checkpointMap = map.clone();
        this.area = area;
        this.generation = generation;
        this.checkpointSeq = checkpointSeq;
        this.lastSeq = checkpointSeq;
    }

    static Superblock readSuperblock(BackingStore store, String name) throws ReduceException {
        if (store.size() < Superblock.MIN_BLOCK_SIZE) {
            throw new ReduceException(name + ": " + store.size() + " bytes, too small to hold a reduce volume");
        }
        try (Arena arena = Arena.ofShared()) {
            MemorySegment b = arena.allocate(Superblock.MIN_BLOCK_SIZE, 4096);
            Blocking.read(store, 0, b);
            return superblock(store.size(), b, name);
        }
    }

    /** Decodes block 0 of a store of {@code storeSize} bytes and checks the volume fits in it. */
    static Superblock superblock(long storeSize, MemorySegment block0, String name) throws ReduceException {
        Superblock sb = Superblock.decode(block0, name);
        if (storeSize < sb.physicalBlocks() * sb.blockSize()) {
            throw new ReduceException(name + ": image is " + storeSize + " bytes, the superblock's physical size is "
                    + sb.physicalBlocks() * sb.blockSize() + " (truncated image?)");
        }
        return sb;
    }

    /** Reads superblock, checkpoints and journal; fails with the field that makes the volume unusable. Waits. */
    static VolumeState load(BackingStore store, String name) throws ReduceException {
        Superblock sb = readSuperblock(store, name);
        int bs = sb.blockSize();
        Choice choice = new Choice(sb, name);
        VolumeState best;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment header = arena.allocate(bs, 4096);
            MemorySegment payload = arena.allocate(Checkpoint.bytes(sb) - bs, 4096);
            for (int area = 0; area < 2; area++) {
                Blocking.read(store, sb.offsetOf(sb.checkpointStart(area)), header);
                if (choice.header(area, header)) {
                    Blocking.read(store, sb.offsetOf(sb.checkpointStart(area) + 1), payload);
                    choice.payload(area, payload);
                }
            }
            best = choice.chosen();
            MemorySegment block = arena.allocate(bs, 4096);
            for (long seq = best.checkpointSeq + 1; seq <= best.lastJournalSeq(); seq++) {
                Blocking.read(store, best.journalOffset(seq), block);
                if (!best.replay(block, seq, name)) {
                    break;
                }
            }
        }
        return best;
    }

    /**
     * Picks the newest valid checkpoint as the two areas are read: {@link #header} says whether the area's payload
     * is worth reading, {@link #payload} decodes it. Shared by the waiting load and {@link VolumeLoading}.
     */
    static final class Choice {
        private final Superblock sb;
        private final String name;
        private final List<String> notes = new ArrayList<>();
        private final Checkpoint.Header[] headers = new Checkpoint.Header[2];
        private VolumeState best;

        Choice(Superblock sb, String name) {
            this.sb = sb;
            this.name = name;
        }

        /** The header of {@code area}; true if its payload must be read next. */
        boolean header(int area, MemorySegment header) {
            Checkpoint.Header h = Checkpoint.decodeHeader(sb, header);
            if (h.invalid() != null) {
                notes.add(areaName(area) + ": " + h.invalid());
                return false;
            }
            if (best != null && best.generation >= h.generation()) {
                notes.add(areaName(area) + ": generation " + h.generation() + " is older");
                return false;
            }
            headers[area] = h;
            return true;
        }

        /** The payload of {@code area}, whose header was accepted. */
        void payload(int area, MemorySegment payload) throws ReduceException {
            Checkpoint.Header h = headers[area];
            long[] map = new long[(int) sb.logicalBlocks()];
            int[] refs = new int[(int) sb.dataBlocks()];
            String bad = Checkpoint.decodePayload(sb, h, payload, map, refs);
            if (bad != null) {
                notes.add(areaName(area) + " generation " + h.generation() + ": " + bad);
                return;
            }
            String range = firstBadMapping(sb, map);
            if (range != null) {
                throw new ReduceException(name + ": " + areaName(area) + " generation " + h.generation() + ": " + range);
            }
            if (best != null) {
                notes.add(areaName(best.area) + ": generation " + best.generation + " is older");
            }
            best = new VolumeState(sb, map, refs, area, h.generation(), h.journalSeq());
        }

        /** The state to replay the journal on. */
        VolumeState chosen() throws ReduceException {
            if (best == null) {
                throw new ReduceException(name + ": no valid checkpoint (" + String.join("; ", notes) + ")");
            }
            best.notes.addAll(notes);
            return best;
        }

        private static String areaName(int area) {
            return "checkpoint " + (area == 0 ? "A" : "B");
        }
    }

    private static String firstBadMapping(Superblock sb, long[] map) {
        for (int i = 0; i < map.length; i++) {
            String why = badMapping(sb, map[i]);
            if (why != null) {
                return "map entry of logical block " + i + ": " + why;
            }
        }
        return null;
    }

    /** Why a mapping cannot be valid for this volume, or null. */
    static String badMapping(Superblock sb, long m) {
        if (m == Mapping.UNMAPPED) {
            return null;
        }
        long b = Mapping.dataBlock(m);
        if (b < 0 || b >= sb.dataBlocks()) {
            return "data block " + b + " outside the data area of " + sb.dataBlocks() + " blocks";
        }
        int slot = Mapping.slot(m);
        if (slot != Mapping.WHOLE && slot >= PackedBlock.MAX_FRAGMENTS) {
            return "fragment slot " + slot + " invalid";
        }
        return null;
    }

    /** The last journal sequence number that could follow the checkpoint (one whole ring). */
    long lastJournalSeq() {
        return checkpointSeq + sb.journalBlocks();
    }

    /** Where journal block {@code seq} lives in the ring. */
    long journalOffset(long seq) {
        return sb.offsetOf(sb.journalStart() + seq % sb.journalBlocks());
    }

    /**
     * Applies journal block {@code seq} if it is exactly the next one (same volume, generation, sequence, valid
     * CRC); false ends the replay. An entry pointing outside the volume is damage, not a torn write: it fails.
     */
    boolean replay(MemorySegment block, long seq, String name) throws ReduceException {
        if (!JournalBlock.isExactly(block, sb.uuid(), generation, seq)) {
            return false; // the first block that is not the next one ends the journal
        }
        int n = JournalBlock.count(block);
        for (int i = 0; i < n; i++) {
            long logical = JournalBlock.logical(block, i);
            long mapping = JournalBlock.mapping(block, i);
            String bad = logical < 0 || logical >= sb.logicalBlocks() ? "logical block " + logical + " beyond the volume"
                    : badMapping(sb, mapping);
            if (bad != null) {
                throw new ReduceException(name + ": journal block " + seq + " entry " + i + ": " + bad);
            }
        }
        for (int i = 0; i < n; i++) {
            remap(map, refs, (int) JournalBlock.logical(block, i), JournalBlock.mapping(block, i));
        }
        lastSeq = seq;
        replayedBlocks++;
        replayedEntries += n;
        return true;
    }

    /** Points a logical block at a new mapping, moving one reference from the old target to the new one. */
    static void remap(long[] map, int[] refs, int logical, long mapping) {
        long old = map[logical];
        if (mapping != Mapping.UNMAPPED) {
            refs[(int) Mapping.dataBlock(mapping)]++;
        }
        map[logical] = mapping;
        if (old != Mapping.UNMAPPED) {
            refs[(int) Mapping.dataBlock(old)]--;
        }
    }

    /** Reference counts recomputed from a map. */
    static int[] countRefs(long[] map, long dataBlocks) {
        int[] refs = new int[(int) dataBlocks];
        for (long m : map) {
            if (m != Mapping.UNMAPPED) {
                refs[(int) Mapping.dataBlock(m)]++;
            }
        }
        return refs;
    }
}
