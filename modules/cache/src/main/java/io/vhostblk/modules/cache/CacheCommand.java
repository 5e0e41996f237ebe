package io.vhostblk.modules.cache;

import io.vhostblk.hooks.ModuleCommand;
import io.vhostblk.hooks.ModuleSettings;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code vhost-blk cache format|status|flush}: cache devices offline (no server using them). {@code flush} writes
 * every dirty block back to the image it caches, for a write-back cache whose server is gone for good.
 */
public final class CacheCommand implements ModuleCommand {

    static final String HELP = """
            Usage: vhost-blk cache format CACHE --volume IMAGE --size SIZE [--block-size BYTES] [--backing-size SIZE]
                   vhost-blk cache status CACHE
                   vhost-blk cache flush CACHE IMAGE [--volume NAME]

              format   write a new, empty cache header and slot table on CACHE (a file is created or grown to
                       SIZE) for the volume IMAGE (its identity is IMAGE as written; --backing-size defaults to
                       IMAGE's size). Refuses a cache that still holds dirty blocks.
              status   print the header (volume, geometry) and how many dirty blocks wait for write-back
              flush    write every dirty block of CACHE into IMAGE, sync IMAGE, then empty the slot table.
                       The volume recorded in CACHE must be IMAGE (or --volume NAME, as the policy named it).

            Only while no server uses CACHE. Settings of the cache module: docs/cache.md.
            """;

    @Override
    public String name() {
        return "cache";
    }

    @Override
    public String summary() {
        return "cache devices: format, status, flush (write back dirty blocks offline)";
    }

    @Override
    public int run(List<String> args, PrintStream out, PrintStream err) {
        if (args.isEmpty() || args.contains("--help") || args.contains("-h")) {
            out.print(HELP);
            return args.isEmpty() ? 2 : 0;
        }
        try {
            return switch (args.get(0)) {
                case "format" -> format(args.subList(1, args.size()), out);
                case "status" -> status(args.subList(1, args.size()), out);
                case "flush" -> flush(args.subList(1, args.size()), out);
                default -> usage(err, "unknown cache command '" + args.get(0) + "'");
            };
        } catch (Usage e) {
            return usage(err, e.getMessage());
        } catch (CacheException e) {
            err.println("vhost-blk cache: " + e.getMessage());
            return 1;
        } catch (java.io.IOException e) {
            err.println("vhost-blk cache: " + e.getMessage());
            return 1;
        }
    }

    private static int usage(PrintStream err, String problem) {
        err.println("vhost-blk cache: " + problem + " (see vhost-blk cache --help)");
        return 2;
    }

    /** A command line that does not say what to do. */
    private static final class Usage extends Exception {
        Usage(String message) {
            super(message);
        }
    }

    /** Positional words and {@code --option value} pairs. */
    private record Words(List<String> positional, java.util.Map<String, String> options) {
        static Words of(List<String> args, String... known) throws Usage {
            List<String> pos = new ArrayList<>();
            java.util.Map<String, String> opts = new java.util.HashMap<>();
            for (int i = 0; i < args.size(); i++) {
                String a = args.get(i);
                if (a.startsWith("--")) {
                    if (!List.of(known).contains(a)) {
                        throw new Usage("unknown option " + a);
                    }
                    if (i + 1 >= args.size()) {
                        throw new Usage(a + " needs a value");
                    }
                    opts.put(a, args.get(++i));
                } else {
                    pos.add(a);
                }
            }
            return new Words(pos, opts);
        }

        long size(String option, long fallback) throws Usage {
            String v = options.get(option);
            if (v == null) {
                return fallback;
            }
            long n = ModuleSettings.parseBytes(v);
            if (n <= 0) {
                throw new Usage(option + ": '" + v + "' is not a size (a whole number with K, M, G or T)");
            }
            return n;
        }
    }

    private static int format(List<String> args, PrintStream out) throws Usage, CacheException, java.io.IOException {
        Words w = Words.of(args, "--volume", "--size", "--block-size", "--backing-size");
        if (w.positional().size() != 1 || !w.options().containsKey("--volume")) {
            throw new Usage("format takes CACHE and --volume IMAGE");
        }
        Path cache = Path.of(w.positional().getFirst());
        String volume = w.options().get("--volume");
        long backing = w.size("--backing-size", -1);
        if (backing < 0) {
            if (!Files.exists(Path.of(volume))) {
                throw new Usage("--volume " + volume + " is no file; give --backing-size");
            }
            backing = Files.size(Path.of(volume));
        }
        long block = w.size("--block-size", 4096);
        if (block < 512 || block > 65536 || Long.bitCount(block) != 1) {
            throw new Usage("--block-size must be a power of two from 512 to 65536");
        }
        long size = w.size("--size", -1);
        if (size < 0 && !Files.exists(cache)) {
            throw new Usage("a new cache file needs --size");
        }
        CacheHeader h = CacheFile.format(cache, size, (int) block, volume, backing);
        out.println(cache + ": cache of " + h.slots() + " blocks of " + h.blockSize() + " bytes for volume " + volume
                + " (" + backing + " bytes), uuid " + h.uuid());
        return 0;
    }

    private static int status(List<String> args, PrintStream out) throws Usage, CacheException {
        Words w = Words.of(args);
        if (w.positional().size() != 1) {
            throw new Usage("status takes CACHE");
        }
        Path cache = Path.of(w.positional().getFirst());
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

    private static int flush(List<String> args, PrintStream out) throws Usage, CacheException {
        Words w = Words.of(args, "--volume");
        if (w.positional().size() != 2) {
            throw new Usage("flush takes CACHE and IMAGE");
        }
        Path cache = Path.of(w.positional().get(0));
        Path image = Path.of(w.positional().get(1));
        int n = CacheFile.flushTo(cache, image, w.options().getOrDefault("--volume", image.toString()));
        out.println(cache + ": " + n + " dirty blocks written back to " + image + "; the cache holds no dirty block");
        return 0;
    }
}
