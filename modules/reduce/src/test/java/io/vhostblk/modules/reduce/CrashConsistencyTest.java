package io.vhostblk.modules.reduce;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A simulated power loss after every single backing-store write and flush of a write/overwrite/discard/flush workload, with
 * every unflushed write landing or not, in any order. After each, the volume must open without repair, pass
 * {@code check}, and every sector must read what the contract allows: the data as of the last completed FLUSH, or
 * that of a write issued since. Then a write and a clean reopen must show no leftover of the crashed run.
 */
class CrashConsistencyTest {

    private static final int BS = 4096;
    private static final int SECTOR = 512;
    private static final int LOGICAL_BLOCKS = 24;
    private static final int SECTORS = LOGICAL_BLOCKS * BS / SECTOR;
    // 3 entries per journal block and a 12-block ring: commits of several journal blocks, ring wraps and
    // checkpoints, all within a short workload.
    private static final int JOURNAL_BLOCKS = 12;
    private static final int JOURNAL_ENTRIES = 3;

    // Thousands of simulated crashes log thousands of failed commits and recoveries: by design, so not shown.
    private static final java.util.logging.Logger QUIET = java.util.logging.Logger.getLogger("io.vhostblk.modules.reduce");
    private static java.util.logging.Level saved;

    @org.junit.jupiter.api.BeforeAll
    static void quiet() {
        saved = QUIET.getLevel();
        QUIET.setLevel(java.util.logging.Level.OFF);
    }

    @org.junit.jupiter.api.AfterAll
    static void loud() {
        QUIET.setLevel(saved);
    }

    private record Op(char kind, long offset, byte[] data, long length) {
    }

    /** What each sector may read after a crash. */
    private static final class Model {
        final byte[][] durable = new byte[SECTORS][];
        final byte[][] current = new byte[SECTORS][];
        final List<List<byte[]>> maybe = new ArrayList<>();

        Model() {
            byte[] zero = new byte[SECTOR];
            for (int s = 0; s < SECTORS; s++) {
                durable[s] = zero;
                current[s] = zero;
                maybe.add(new ArrayList<>());
            }
        }

        void issued(long offset, byte[] data, long length) {
            for (long at = 0; at < length; at += SECTOR) {
                maybe.get((int) ((offset + at) / SECTOR)).add(data == null ? new byte[SECTOR] : Arrays.copyOfRange(data, (int) at, (int) at + SECTOR));
            }
        }

        void completed(long offset, byte[] data, long length) {
            for (long at = 0; at < length; at += SECTOR) {
                current[(int) ((offset + at) / SECTOR)] = data == null ? new byte[SECTOR] : Arrays.copyOfRange(data, (int) at, (int) at + SECTOR);
            }
        }

        void flushed() {
            System.arraycopy(current, 0, durable, 0, SECTORS);
            maybe.forEach(List::clear);
        }

        String allows(int sector, byte[] got) {
            if (Arrays.equals(durable[sector], got)) {
                return null;
            }
            for (byte[] m : maybe.get(sector)) {
                if (Arrays.equals(m, got)) {
                    return null;
                }
            }
            return "sector " + sector + " (block " + sector * SECTOR / BS + ") reads data that was never written there since the last flush";
        }
    }

    private static List<Op> workload(long seed) {
        Random r = new Random(seed);
        List<Op> ops = new ArrayList<>();
        List<byte[]> written = new ArrayList<>();
        for (int i = 0; i < 36; i++) {
            int choice = r.nextInt(10);
            if (choice < 2) {
                ops.add(new Op('F', 0, null, 0));
            } else if (choice < 3) {
                long block = r.nextInt(LOGICAL_BLOCKS - 2);
                ops.add(new Op('D', block * BS, null, (1 + r.nextInt(2)) * (long) BS));
            } else {
                boolean partial = r.nextInt(4) == 0;
                int length = partial ? SECTOR * (1 + r.nextInt(4)) : BS * (1 + r.nextInt(3));
                long offset = partial ? (long) SECTOR * r.nextInt(SECTORS - 8) : (long) BS * r.nextInt(LOGICAL_BLOCKS - 3);
                byte[] data;
                int kind = r.nextInt(4);
                if (kind == 0 && !written.isEmpty()) {
                    byte[] earlier = written.get(r.nextInt(written.size())); // duplicate data: dedup shares it
                    data = Arrays.copyOf(earlier, length);
                } else if (kind == 1) {
                    data = ReduceVolumeTest.compressible(seed * 1000 + i, length);
                } else {
                    data = ReduceVolumeTest.random(seed * 1000 + i, length);
                }
                written.add(data);
                ops.add(new Op('W', offset, data, length));
            }
        }
        ops.add(new Op('F', 0, null, 0));
        return ops;
    }

    /** Runs the ops until the store crashes; returns the model of what may be on the volume. */
    private static Model run(ReduceVolume v, List<Op> ops, CrashStore store) {
        Model m = new Model();
        for (Op op : ops) {
            int result = switch (op.kind()) {
                case 'F' -> Sync.flush(v);
                case 'D' -> {
                    m.issued(op.offset(), null, op.length());
                    yield Sync.discard(v, op.offset(), op.length());
                }
                default -> {
                    m.issued(op.offset(), op.data(), op.length());
                    yield Sync.write(v, op.offset(), op.data());
                }
            };
            if (result == Sync.PENDING) {
                fail(op.kind() + " at " + op.offset() + " never completed");
            }
            if (result == 0) {
                if (op.kind() == 'F') {
                    m.flushed();
                } else {
                    m.completed(op.offset(), op.data(), op.length());
                }
            }
            if (store.crashed) {
                break;
            }
            assertEquals(0, result, "request failed before the crash");
        }
        return m;
    }

    @ParameterizedTest(name = "workload {0}, options {1}")
    @CsvSource({"1, both", "2, both", "3, dedup", "4, compress", "5, plain", "6, both", "7, both", "8, dedup", "9, both zstd"})
    void everyCrashPointKeepsTheContract(long seed, String features) throws Exception {
        boolean both = features.startsWith("both");
        ReduceVolume.Options options = new ReduceVolume.Options(both || features.equals("dedup"),
                both || features.equals("compress"), 24, 256);
        Codec codec = features.endsWith("zstd") ? Codec.ZSTD : Codec.LZ4;
        // Small data area (31 blocks for 24 logical): freed blocks are soon reused, as they are when a disk is full.
        MemoryStore fresh = new MemoryStore(40L * BS);
        ReduceVolume.format(fresh, new ReduceVolume.FormatOptions((long) LOGICAL_BLOCKS * BS, BS, codec, JOURNAL_BLOCKS));
        List<Op> ops = workload(seed);

        CrashStore dry = new CrashStore(fresh.image, Long.MAX_VALUE);
        try (ReduceVolume v = ReduceVolume.open(dry, "dry", options, null, null, null, JOURNAL_ENTRIES)) {
            run(v, ops, dry);
        }
        long total = dry.steps;
        assertTrue(total > 40, "the workload should reach the store often, wrote " + total);

        int crashes = 0;
        for (long n = 0; n <= total; n++) {
            for (int mode = 0; mode < 4; mode++) {
                CrashStore store = new CrashStore(fresh.image, n);
                Model model;
                try {
                    ReduceVolume v = Sync.open(store, "crash", options, JOURNAL_ENTRIES);
                    model = run(v, ops, store);
                    v.close();
                } catch (ReduceException e) {
                    assertTrue(store.crashed, "open failed without a crash: " + e.getMessage());
                    model = new Model(); // crashed while opening: the formatted, empty volume must come back
                }
                MemorySegment image = store.imageAfterCrash(new Random(seed * 7919 + n * 31 + mode), mode);
                verifyAfterCrash(image, model, options, "workload " + seed + ", crash after step " + n + ", mode " + mode);
                crashes++;
                if (store.unflushedPieces() == 0) {
                    break; // every mode gives the same image
                }
            }
        }
        assertTrue(crashes > total);
    }

    private static void verifyAfterCrash(MemorySegment image, Model model, ReduceVolume.Options options, String where) throws Exception {
        MemoryStore store = new MemoryStore(image);
        byte[] before;
        // Recovery as the module runs it: the asynchronous open (VolumeLoading); the others use the waiting one.
        try (ReduceVolume v = Sync.open(store, "after", options, JOURNAL_ENTRIES)) {
            before = Sync.read(v, 0, LOGICAL_BLOCKS * BS);
            for (int s = 0; s < SECTORS; s++) {
                String bad = model.allows(s, Arrays.copyOfRange(before, s * SECTOR, (s + 1) * SECTOR));
                if (bad != null) {
                    fail(where + ": " + bad);
                }
            }
            // Life goes on: new writes after recovery, then a clean reopen shows exactly that state.
            Sync.ok(Sync.write(v, 0, ReduceVolumeTest.random(99, 2 * BS)));
            Sync.ok(Sync.write(v, 5L * BS, ReduceVolumeTest.compressible(99, BS)));
            Sync.ok(Sync.flush(v));
        }
        ReduceCheck.Report report = ReduceCheck.run(store, "after");
        assertTrue(report.clean(), () -> where + ": check after recovery: " + report.problems());
        byte[] expected = before.clone();
        System.arraycopy(ReduceVolumeTest.random(99, 2 * BS), 0, expected, 0, 2 * BS);
        System.arraycopy(ReduceVolumeTest.compressible(99, BS), 0, expected, 5 * BS, BS);
        try (ReduceVolume v = ReduceVolume.open(store, "again", options, null, null, null, JOURNAL_ENTRIES)) {
            assertArrayEquals(expected, Sync.read(v, 0, LOGICAL_BLOCKS * BS), where + ": after recovery, write and reopen");
        }
    }
}
