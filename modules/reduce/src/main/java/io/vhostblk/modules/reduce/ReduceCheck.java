package io.vhostblk.modules.reduce;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Offline verification of a volume's metadata, as {@code vhost-blk reduce check} runs it: the state a fresh open
 * would recover (newest valid checkpoint + journal) is checked for map entries inside the data area, reference
 * counts equal to the map's references, no block used both whole and packed, and every referenced compressed
 * fragment readable and decompressing to one block. Only reads.
 */
public final class ReduceCheck {

    private static final int MAX_LISTED = 20;

    /** What {@link #run} found: problems (empty when clean), notes, and the volume's usage. */
    public record Report(List<String> problems, List<String> notes, Usage usage) {

        public boolean clean() {
            return problems.isEmpty();
        }
    }

    /** Space use of a volume, in blocks of {@code blockSize}. */
    public record Usage(int blockSize, long logicalBlocks, long mappedBlocks, long dataBlocks, long liveBlocks,
                        long wholeBlocks, long packedBlocks, long fragments, long sharedReferences, long generation,
                        long journalBlocksReplayed, Codec codec, java.util.UUID uuid) {

        /** Logical bytes stored per physical byte used (1.0 when nothing is saved). */
        public double reduction() {
            return liveBlocks == 0 ? 1.0 : (double) mappedBlocks / liveBlocks;
        }
    }

    private ReduceCheck() {
    }

    /** Checks the volume on {@code store}; {@code name} labels messages (the image path). */
    public static Report run(BackingStore store, String name) {
        List<String> problems = new ArrayList<>();
        VolumeState s;
        try {
            s = VolumeState.load(store, name);
        } catch (ReduceException e) {
            problems.add(e.getMessage());
            return new Report(problems, List.of(), null);
        }
        Superblock sb = s.sb;
        compareRefs("checkpoint " + (s.area == 0 ? "A" : "B") + " reference count",
                s.checkpointRefs, VolumeState.countRefs(s.checkpointMap, sb.dataBlocks()), problems);
        int[] counted = VolumeState.countRefs(s.map, sb.dataBlocks());
        compareRefs("reference count after journal replay", s.refs, counted, problems);

        // Kind of use per data block: 1 whole, 2 packed, 3 both (wrong).
        byte[] kind = new byte[(int) sb.dataBlocks()];
        long mapped = 0;
        for (long m : s.map) {
            if (m != Mapping.UNMAPPED) {
                mapped++;
                kind[(int) Mapping.dataBlock(m)] |= (byte) (Mapping.isWhole(m) ? 1 : 2);
            }
        }
        long live = 0;
        long whole = 0;
        long packed = 0;
        int listed = 0;
        for (int b = 0; b < kind.length; b++) {
            if (counted[b] > 0) {
                live++;
            }
            if (kind[b] == 1) {
                whole++;
            } else if (kind[b] == 2) {
                packed++;
            } else if (kind[b] == 3 && listed++ < MAX_LISTED) {
                problems.add("data block " + b + " is referenced both as a whole block and as packed fragments");
            }
        }
        long fragments = checkFragments(store, sb, s.map, kind, problems);
        long shared = mapped - (whole + fragments);
        Usage usage = new Usage(sb.blockSize(), sb.logicalBlocks(), mapped, sb.dataBlocks(), live, whole, packed, fragments,
                shared, s.generation, s.replayedBlocks, sb.codec(), sb.uuid());
        return new Report(problems, s.notes, usage);
    }

    private static void compareRefs(String what, int[] stored, int[] counted, List<String> problems) {
        int wrong = 0;
        for (int b = 0; b < stored.length; b++) {
            if (stored[b] != counted[b]) {
                if (wrong < MAX_LISTED) {
                    problems.add(what + " of data block " + b + ": stored " + stored[b] + ", map references " + counted[b]);
                }
                wrong++;
            }
        }
        if (wrong > MAX_LISTED) {
            problems.add(what + ": " + (wrong - MAX_LISTED) + " more blocks wrong");
        }
    }

    /** Reads every packed block and decompresses each referenced fragment; returns the distinct fragments. */
    private static long checkFragments(BackingStore store, Superblock sb, long[] map, byte[] kind, List<String> problems) {
        int bs = sb.blockSize();
        // Referenced slots per packed block, as a 14-bit mask.
        short[] slots = new short[kind.length];
        for (long m : map) {
            if (m != Mapping.UNMAPPED && !Mapping.isWhole(m)) {
                slots[(int) Mapping.dataBlock(m)] |= (short) (1 << Mapping.slot(m));
            }
        }
        long fragments = 0;
        BlockCompressor compressor = new BlockCompressor();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment block = arena.allocate(bs, 4096);
            MemorySegment out = arena.allocate(bs, 4096);
            for (int b = 0; b < slots.length; b++) {
                if (slots[b] == 0) {
                    continue;
                }
                try {
                    Blocking.read(store, sb.offsetOf(sb.dataStart() + b), block);
                } catch (ReduceException e) {
                    problems.add("packed data block " + b + ": " + e.getMessage());
                    continue;
                }
                for (int slot = 0; slot < PackedBlock.MAX_FRAGMENTS; slot++) {
                    if ((slots[b] & (1 << slot)) == 0) {
                        continue;
                    }
                    fragments++;
                    String bad = PackedBlock.invalid(block, slot, bs);
                    if (bad == null && !compressor.decompress(PackedBlock.codec(block), block, PackedBlock.offset(block, slot),
                            PackedBlock.length(block, slot), out)) {
                        bad = "fragment " + slot + " does not decompress to one block";
                    }
                    if (bad != null) {
                        problems.add("packed data block " + b + ": " + bad);
                    }
                }
            }
        }
        return fragments;
    }
}
