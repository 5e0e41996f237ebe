package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code vhost-blk reduce format|check|stats IMAGE}: offline administration of dedup/compress volumes, one picocli
 * command per action, run through {@link CommandKit}.
 * Exit codes: 0 success (check: clean), 1 inconsistent or unusable image (the report names what), 2 bad arguments.
 */
@Command(name = "reduce", header = "dedup/compress volumes: format, check, stats", description = {"dedup/compress volumes: format, check, stats. Exit status: 0 done (check: "
        + "clean), 1 inconsistent or unusable image, 2 bad arguments.", ""},
        subcommands = {ReduceCommand.Format.class, ReduceCommand.Check.class, ReduceCommand.Stats.class})
public final class ReduceCommand extends CommandKit.CommandGroup {

    public static final int OK = 0;
    public static final int INCONSISTENT = 1;
    public static final int USAGE = 2;

    private final PrintStream out;
    private final PrintStream err;

    /** For picocli, as a sub-command of {@code vhost-blk}. */
    public ReduceCommand() {
        this(System.out, System.err);
    }

    /** For running on its own: prints to {@code out} and {@code err}. */
    public ReduceCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** Runs one command line (the words after {@code reduce}); returns the exit code after printing any reason. */
    public int run(List<String> args) {
        return CommandKit.execute(new ReduceCommand(), args, out, err);
    }

    /** What every action takes: the image; an unusable image is reported with exit status 1. */
    abstract static class Action extends CommandKit.Action {
        @Parameters(index = "0", paramLabel = "IMAGE", description = "the volume's image file")
        Path image;

        @Override
        protected final int exitStatusOf(Exception failure) throws CommandUsageException {
            if (failure instanceof IllegalArgumentException) {
                throw new CommandUsageException(failure.getMessage());
            }
            return failure instanceof IOException ? INCONSISTENT : unexpected(failure);
        }

        @Override
        protected abstract int act() throws IOException, CommandUsageException;
    }

    @Command(name = "format", description = "create a volume. A new file gets the physical size (default: the logical size "
            + "plus metadata, sparse); an existing one keeps its size. --force overwrites an "
            + "existing volume.")
    static final class Format extends Action {
        @Option(names = "--logical-size", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
                description = "the size the guest sees (required): bytes, or with K, M, G or T (binary) suffix")
        Long logicalSize;

        @Option(names = "--block-size", paramLabel = "SIZE", converter = ByteSizes.Converter.class, description = "Default 4096")
        long blockSizeBytes = 4096;

        @Option(names = "--physical-size", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
                description = "size of a new (or resized) image file")
        Long physicalSize;

        @Option(names = "--codec", paramLabel = "lz4|zstd", description = "compression codec. Default lz4")
        String codecName = "lz4";

        @Option(names = "--journal-blocks", paramLabel = "N", converter = ByteSizes.Converter.class,
                description = "journal length in blocks (default: sized from the volume)")
        long journalBlocks;

        @Option(names = "--force", description = "overwrite an existing reduce volume")
        boolean force;

        @Override
        protected int act() throws IOException, CommandUsageException {
            int blockSize = (int) blockSizeBytes;
            if (logicalSize == null) {
                throw new CommandUsageException("--logical-size is required");
            }
            long logical = logicalSize;
            Codec codec = Codec.parse(codecName);
            long existing = Files.exists(image) ? Files.size(image) : 0;
            long physical = physicalSize != null ? physicalSize : existing > 0 ? existing : defaultPhysical(logical, blockSize);
            if (existing > 0 && !force && holdsVolume(image)) {
                throw new IOException(image + " already holds a reduce volume (use --force to overwrite it)");
            }
            if (existing == 0 || physicalSize != null) {
                try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                    f.setLength(physical); // sparse: only what the volume writes takes space
                }
            }
            try (FileBackingStore store = FileBackingStore.open(image, false)) {
                java.util.UUID uuid = ReduceVolume.format(store, new ReduceVolume.FormatOptions(logical, blockSize, codec, journalBlocks));
                out.println("Formatted " + image + ": reduce volume " + uuid + ", logical size " + logical + " bytes, physical "
                        + store.size() + " bytes, " + blockSize + "-byte blocks, " + codec.name().toLowerCase(Locale.ROOT));
            }
            return OK;
        }
    }

    @Command(name = "check", description = "verify map, reference counts and packed fragments (exit 0 clean, 1 inconsistent)")
    static final class Check extends Action {
        @Override
        protected int act() throws IOException {
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
    }

    @Command(name = "stats", description = "sizes, space use, dedup and compression savings")
    static final class Stats extends Action {
        @Override
        protected int act() throws IOException {
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
}
