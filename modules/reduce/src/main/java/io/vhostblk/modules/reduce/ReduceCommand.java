package io.vhostblk.modules.reduce;

import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code vhost-blk reduce format|check|stats IMAGE}: offline administration of dedup/compress volumes.
 * Exit codes: 0 success (check: clean), 1 inconsistent or unusable image (the report names what), 2 bad arguments.
 */
public final class ReduceCommand {

    public static final int OK = 0;
    public static final int INCONSISTENT = 1;
    public static final int USAGE = 2;

    static final String USAGE_TEXT = """
            usage: vhost-blk reduce <command> IMAGE [options]
              format  IMAGE --logical-size SIZE [--block-size 4096] [--physical-size SIZE] [--codec lz4|zstd]
                      [--journal-blocks N] [--force]
                      A new file gets the physical size (default: the logical size plus metadata, sparse);
                      an existing one keeps its size. --force overwrites an existing reduce volume.
              check   IMAGE   verify map, reference counts and packed fragments (exit 0 clean, 1 inconsistent)
              stats   IMAGE   sizes, space use, dedup and compression savings
            SIZE: bytes, or with K, M, G or T (binary) suffix.
            """;

    private static final Set<String> FLAGS = Set.of("--force");
    private static final Set<String> VALUED = Set.of("--logical-size", "--block-size", "--physical-size", "--codec",
            "--journal-blocks");

    private final PrintStream out;
    private final PrintStream err;

    public ReduceCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** Runs one command; never throws for user errors, returns the exit code after printing the reason. */
    public int run(List<String> args) {
        if (args.isEmpty() || args.contains("--help") || args.contains("-h")) {
            (args.isEmpty() ? err : out).print(USAGE_TEXT);
            return args.isEmpty() ? USAGE : OK;
        }
        String command = args.get(0);
        try {
            Map<String, String> options = new HashMap<>();
            Path image = parse(args.subList(1, args.size()), options);
            return switch (command) {
                case "format" -> format(image, options);
                case "check" -> check(image, options);
                case "stats" -> stats(image, options);
                default -> throw new IllegalArgumentException("unknown command \"" + command + "\"");
            };
        } catch (IllegalArgumentException e) {
            err.println("vhost-blk reduce " + command + ": " + e.getMessage());
            err.print(USAGE_TEXT);
            return USAGE;
        } catch (IOException e) {
            err.println("vhost-blk reduce " + command + ": " + e.getMessage());
            return INCONSISTENT;
        }
    }

    private static Path parse(List<String> args, Map<String, String> options) {
        Path image = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (FLAGS.contains(a)) {
                options.put(a, "");
            } else if (VALUED.contains(a)) {
                if (i + 1 >= args.size()) {
                    throw new IllegalArgumentException(a + " needs a value");
                }
                options.put(a, args.get(++i));
            } else if (a.startsWith("-")) {
                throw new IllegalArgumentException("unknown option " + a);
            } else if (image == null) {
                image = Path.of(a);
            } else {
                throw new IllegalArgumentException("one IMAGE only (got " + image + " and " + a + ")");
            }
        }
        if (image == null) {
            throw new IllegalArgumentException("IMAGE missing");
        }
        return image;
    }

    private int format(Path image, Map<String, String> o) throws IOException {
        if (!o.containsKey("--logical-size")) {
            throw new IllegalArgumentException("--logical-size is required");
        }
        long logical = parseSize("--logical-size", o.get("--logical-size"));
        int blockSize = o.containsKey("--block-size") ? (int) parseSize("--block-size", o.get("--block-size")) : 4096;
        Codec codec = o.containsKey("--codec") ? Codec.parse(o.get("--codec")) : Codec.LZ4;
        long journal = o.containsKey("--journal-blocks") ? parseSize("--journal-blocks", o.get("--journal-blocks")) : 0;
        long existing = Files.exists(image) ? Files.size(image) : 0;
        long physical = o.containsKey("--physical-size") ? parseSize("--physical-size", o.get("--physical-size"))
                : existing > 0 ? existing : defaultPhysical(logical, blockSize);
        if (existing > 0 && !o.containsKey("--force") && holdsVolume(image)) {
            throw new IOException(image + " already holds a reduce volume (use --force to overwrite it)");
        }
        if (existing == 0 || o.containsKey("--physical-size")) {
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength(physical); // sparse: only what the volume writes takes space
            }
        }
        try (FileBackingStore store = FileBackingStore.open(image, false)) {
            java.util.UUID uuid = ReduceVolume.format(store, new ReduceVolume.FormatOptions(logical, blockSize, codec, journal));
            out.println("Formatted " + image + ": reduce volume " + uuid + ", logical size " + logical + " bytes, physical "
                    + store.size() + " bytes, " + blockSize + "-byte blocks, " + codec.name().toLowerCase(Locale.ROOT));
        }
        return OK;
    }

    /** Enough physical space for every logical block stored whole, plus metadata: the volume can never fill up. */
    static long defaultPhysical(long logical, int blockSize) {
        long blocks = logical / blockSize;
        long physical = blocks + 64;
        while (true) {
            long data = Superblock.plan(blockSize, logical, physical * blockSize, Codec.LZ4, 0).dataBlocks();
            if (data >= blocks) {
                return physical * blockSize;
            }
            physical += blocks - data;
        }
    }

    private static boolean holdsVolume(Path image) {
        try (FileBackingStore store = FileBackingStore.open(image, true)) {
            VolumeState.readSuperblock(store, image.toString());
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private int check(Path image, Map<String, String> o) throws IOException {
        try (FileBackingStore store = FileBackingStore.open(image, true)) {
            ReduceCheck.Report r = ReduceCheck.run(store, image.toString());
            for (String note : r.notes()) {
                out.println("note: " + note);
            }
            if (r.clean()) {
                ReduceCheck.Usage u = r.usage();
                out.println(image + ": clean (" + u.mappedBlocks() + " of " + u.logicalBlocks() + " logical blocks mapped, "
                        + u.liveBlocks() + " of " + u.dataBlocks() + " data blocks in use)");
                return OK;
            }
            for (String p : r.problems()) {
                out.println("problem: " + p);
            }
            out.println(image + ": INCONSISTENT, " + r.problems().size() + " problem(s)");
            return INCONSISTENT;
        }
    }

    private int stats(Path image, Map<String, String> o) throws IOException {
        try (FileBackingStore store = FileBackingStore.open(image, true)) {
            ReduceCheck.Report r = ReduceCheck.run(store, image.toString());
            if (r.usage() == null) {
                throw new ReduceException(String.join("; ", r.problems()));
            }
            ReduceCheck.Usage u = r.usage();
            long bs = u.blockSize();
            out.println("uuid: " + u.uuid());
            out.println("block_size: " + bs);
            out.println("codec: " + u.codec().name().toLowerCase(Locale.ROOT));
            out.println("logical_bytes: " + u.logicalBlocks() * bs);
            out.println("logical_bytes_mapped: " + u.mappedBlocks() * bs);
            out.println("data_area_bytes: " + u.dataBlocks() * bs);
            out.println("physical_bytes_used: " + u.liveBlocks() * bs);
            out.println("whole_blocks: " + u.wholeBlocks());
            out.println("packed_blocks: " + u.packedBlocks());
            out.println("compressed_fragments: " + u.fragments());
            out.println("dedup_shared_references: " + u.sharedReferences());
            out.println(String.format(Locale.ROOT, "reduction_ratio: %.2f", u.reduction()));
            out.println("checkpoint_generation: " + u.generation());
            out.println("journal_blocks_to_replay: " + u.journalBlocksReplayed());
            out.println("consistent: " + (r.clean() ? "yes" : "no (run check)"));
            return OK;
        }
    }

    static long parseSize(String option, String text) {
        String t = text.trim().toUpperCase(Locale.ROOT);
        int shift = switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
            case 'K' -> 10;
            case 'M' -> 20;
            case 'G' -> 30;
            case 'T' -> 40;
            default -> 0;
        };
        try {
            long n = Long.parseLong(shift == 0 ? t : t.substring(0, t.length() - 1));
            if (n <= 0 || n > (Long.MAX_VALUE >> shift)) {
                throw new NumberFormatException();
            }
            return n << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " " + text + ": expected a positive number such as 4096, 512M or 20G");
        }
    }
}
