package io.vhostblk.modules.cache;

import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code vhost-blk cache format|status|flush}: cache devices offline (no server using them), one picocli command
 * per action, run through {@link CommandKit}. {@code flush} writes every dirty block back to the image it caches,
 * for a write-back cache whose server is gone. Exit status: 0 done, 1 unusable cache or image, 2 bad arguments.
 */
@Command(name = "cache", header = "cache devices: format, status, flush dirty blocks offline",
        description = {"Cache devices of the cache module, offline (no server may use them). Exit status: 0 done, "
                + "1 unusable cache or image, 2 bad arguments. Settings and format: docs/cache.md.", ""},
        subcommands = {CacheCommand.Format.class, CacheCommand.Status.class, CacheCommand.Flush.class})
public final class CacheCommand extends CommandKit.CommandGroup {
    /** Runs one command line (the words after {@code cache}); returns the exit status after printing any reason. */
    public int run(List<String> args, PrintStream out, PrintStream err) {
        return CommandKit.execute(new CacheCommand(), args, out, err);
    }

    /** What every action takes: the cache device; an unusable one is reported with exit status 1. */
    abstract static class Action extends CommandKit.Action {
        @Parameters(index = "0", paramLabel = "CACHE", description = "the cache file or device")
        Path cache;

        @Override
        protected final int exitStatusOf(Exception failure) {
            return failure instanceof CacheException || failure instanceof IOException ? 1 : unexpected(failure);
        }

        @Override
        protected abstract int act() throws CacheException, IOException, CommandUsageException;
    }

    @Command(name = "format", description = "write a new header and an empty slot table on CACHE (a file is created or "
            + "grown to --size) for the volume --volume IMAGE; refuses a cache that still holds dirty blocks")
    static final class Format extends Action {
        @Option(names = "--volume", paramLabel = "IMAGE", required = true,
                description = "the volume cached, as the policy's volume setting names it (default there: the image path)")
        String volume;

        @Option(names = "--size", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
                description = "bytes of CACHE to use (required for a new file): bytes, or with K, M, G or T")
        Long size;

        @Option(names = "--block-size", paramLabel = "SIZE", converter = ByteSizes.Converter.class, description = "Default 4096")
        long blockSize = 4096;

        @Option(names = "--backing-size", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
                description = "the volume's size (default: the size of the file IMAGE)")
        Long backingSize;

        @Override
        protected int act() throws CacheException, IOException, CommandUsageException {
            CommandKit.checkRange("--block-size", blockSize, 512, 65536);
            if (Long.bitCount(blockSize) != 1) {
                throw new CommandUsageException("--block-size: " + blockSize + " is not a power of two");
            }
            long backing;
            if (backingSize != null) {
                backing = backingSize;
            } else if (Files.isRegularFile(Path.of(volume))) {
                backing = Files.size(Path.of(volume));
            } else {
                throw new CommandUsageException("--volume " + volume + " is no file: give --backing-size");
            }
            if (size == null && !Files.exists(cache)) {
                throw new CommandUsageException("a new cache file needs --size");
            }
            CacheHeader h = CacheFile.format(cache, size == null ? -1 : size, (int) blockSize, volume, backing);
            out.println(cache + ": cache of " + h.slots() + " blocks of " + h.blockSize() + " bytes for volume " + volume
                    + " (" + backing + " bytes), uuid " + h.uuid());
            return 0;
        }
    }

    @Command(name = "status", description = "print the header (volume, geometry) and how many dirty blocks wait for write-back")
    static final class Status extends Action {
        @Override
        protected int act() throws CacheException {
            CacheFile.Opened o = CacheFile.read(cache);
            CacheHeader h = o.header();
            SlotTable t = SlotTable.recover(h, o.table());
            int stale = 0;
            for (boolean s : t.stale()) {
                stale += s ? 1 : 0;
            }
            out.println("cache:        " + cache);
            out.println("uuid:         " + h.uuid());
            out.println("volume:       " + h.volume() + " (" + h.backingCapacity() + " bytes)");
            out.println("block size:   " + h.blockSize());
            out.println("slots:        " + h.slots() + " (" + h.slots() * h.blockSize() + " bytes of data)");
            out.println("dirty blocks: " + t.dirtyCount() + " (" + (long) t.dirtyCount() * h.blockSize() + " bytes to write back)");
            out.println("stale slots:  " + stale);
            return 0;
        }
    }

    @Command(name = "flush", description = "write every dirty block of CACHE into IMAGE, sync IMAGE, then empty the slot "
            + "table (for a cache stacked directly on the image; the cache must belong to IMAGE)")
    static final class Flush extends Action {
        @Parameters(index = "1", paramLabel = "IMAGE", description = "the image the cache belongs to")
        Path image;

        @Option(names = "--volume", paramLabel = "NAME", description = "the volume name the policy gave (default: IMAGE)")
        String volume;

        @Override
        protected int act() throws CacheException {
            int n = CacheFile.flushTo(cache, image, volume == null ? image.toString() : volume);
            out.println(cache + ": " + n + " dirty blocks written back to " + image + "; the cache holds no dirty block");
            return 0;
        }
    }
}
