package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code vhost-blk crypt format|add-key|remove-key|change-key|dump}: LUKS image administration for the
 * server's CLI, which passes the words after {@code crypt}.
 *
 * <p>Secrets come only from files ({@code --key-file}, {@code --new-key-file}), never from an argument, and are
 * read whole like {@code cryptsetup --key-file} and QEMU's {@code secret,file=}: a trailing newline is part of the
 * passphrase (write the file with {@code printf '%s'}, or pass the same file to every tool).
 *
 * <p>Exit codes follow cryptsetup's: 0 success, 1 bad arguments, 2 wrong passphrase, 4 unusable image or key
 * file (the message names the file and the field).
 */
public final class CryptCommand {

    public static final int OK = 0;
    public static final int USAGE = 1;
    public static final int WRONG_PASSPHRASE = 2;
    public static final int BAD_IMAGE = 4;

    static final String USAGE_TEXT = """
            usage: vhost-blk crypt <command> IMAGE [options]
              format      IMAGE --key-file FILE [--luks1|--luks2] [--sector-size 512|4096] [--size SIZE]
                          [--pbkdf pbkdf2|argon2id] [--pbkdf-iterations N | --iter-time MS]  (N: PBKDF2 count or Argon2 time cost)
                          [--pbkdf-memory KIB] [--pbkdf-parallel N]
              add-key     IMAGE --key-file FILE --new-key-file FILE [KDF options]
              remove-key  IMAGE --key-file FILE [--key-slot N]
              change-key  IMAGE --key-file FILE --new-key-file FILE [KDF options]
              dump        IMAGE
            Key files are used whole, trailing newline included (as cryptsetup --key-file and QEMU secret file=).
            SIZE is the payload the guest sees: bytes, or with K, M, G or T (binary) suffix.
            """;

    private static final Set<String> FLAGS = Set.of("--luks1", "--luks2");
    private static final Set<String> VALUED = Set.of("--key-file", "--new-key-file", "--sector-size", "--size",
            "--pbkdf", "--pbkdf-iterations", "--iter-time", "--pbkdf-memory", "--pbkdf-parallel", "--key-slot");

    private final PrintStream out;
    private final PrintStream err;

    public CryptCommand(PrintStream out, PrintStream err) {
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
        Parsed p;
        try {
            p = parse(args.subList(1, args.size()));
        } catch (IllegalArgumentException e) {
            err.println("vhost-blk crypt " + command + ": " + e.getMessage());
            err.print(USAGE_TEXT);
            return USAGE;
        }
        try {
            return switch (command) {
                case "format" -> format(p);
                case "add-key" -> addKey(p);
                case "remove-key" -> removeKey(p);
                case "change-key" -> changeKey(p);
                case "dump" -> dump(p);
                default -> throw new IllegalArgumentException("unknown command \"" + command + "\"");
            };
        } catch (WrongPassphraseException e) {
            err.println("vhost-blk crypt " + command + ": " + e.getMessage());
            return WRONG_PASSPHRASE;
        } catch (IllegalArgumentException e) {
            err.println("vhost-blk crypt " + command + ": " + e.getMessage());
            return USAGE;
        } catch (IOException e) {
            // LuksException messages already name the file and field; other I/O errors name the file themselves.
            err.println("vhost-blk crypt " + command + ": " + describe(e));
            return BAD_IMAGE;
        }
    }

    private static String describe(IOException e) {
        if (e instanceof LuksException) {
            return e.getMessage();
        }
        if (e instanceof java.nio.file.FileSystemException fs) {
            return fs.getFile() + ": " + (fs.getReason() != null ? fs.getReason() : e.getClass().getSimpleName());
        }
        return e.getClass().getSimpleName() + ": " + e.getMessage();
    }

    private int format(Parsed p) throws IOException {
        Path image = p.image();
        if (p.has("--luks1") && p.has("--luks2")) {
            throw new IllegalArgumentException("--luks1 and --luks2 exclude each other");
        }
        LuksVersion version = p.has("--luks1") ? LuksVersion.LUKS1 : LuksVersion.LUKS2;
        int sectorSize = p.has("--sector-size") ? p.integer("--sector-size") : 512;
        long size = p.has("--size") ? parseSize(p.value("--size")) : 0;
        FormatOptions options = new FormatOptions(version, sectorSize, size, kdf(p, version));
        try (Secret s = Secret.fromFile(p.path("--key-file"))) {
            LuksVolume.format(image, s, options);
        }
        out.println("Formatted " + image + " as " + version + " (aes-xts-plain64, " + sectorSize + "-byte sectors), key slot 0");
        return OK;
    }

    private int addKey(Parsed p) throws IOException {
        Path image = p.image();
        LuksVersion version = versionOf(image);
        try (Secret existing = Secret.fromFile(p.path("--key-file")); Secret added = Secret.fromFile(p.path("--new-key-file"))) {
            int slot = LuksVolume.addKey(image, existing, added, kdf(p, version));
            out.println("Added key slot " + slot + " to " + image);
        }
        return OK;
    }

    private int removeKey(Parsed p) throws IOException {
        Path image = p.image();
        try (Secret s = Secret.fromFile(p.path("--key-file"))) {
            if (p.has("--key-slot")) {
                int slot = p.integer("--key-slot");
                LuksVolume.removeSlot(image, slot, s);
                out.println("Removed key slot " + slot + " from " + image);
            } else {
                int slot = LuksVolume.removeKey(image, s);
                out.println("Removed key slot " + slot + " from " + image);
            }
        }
        return OK;
    }

    private int changeKey(Parsed p) throws IOException {
        Path image = p.image();
        LuksVersion version = versionOf(image);
        try (Secret old = Secret.fromFile(p.path("--key-file")); Secret replacement = Secret.fromFile(p.path("--new-key-file"))) {
            int slot = LuksVolume.changeKey(image, old, replacement, kdf(p, version));
            out.println("Changed passphrase of " + image + "; it is now in key slot " + slot);
        }
        return OK;
    }

    private int dump(Parsed p) throws IOException {
        out.print(LuksVolume.dump(p.image()));
        return OK;
    }

    private static LuksVersion versionOf(Path image) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.READ)) {
            return LuksHeader.read(image, ch).version();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new LuksException(image, "image", "does not exist", e);
        }
    }

    /** KDF from the options, defaulting per version (PBKDF2 for LUKS1, Argon2id for LUKS2, 2 s). */
    private static KdfOptions kdf(Parsed p, LuksVersion version) {
        KdfOptions k = KdfOptions.defaults(version);
        if (p.has("--pbkdf")) {
            String type = p.value("--pbkdf").toLowerCase(Locale.ROOT);
            k = switch (type) {
                case "pbkdf2" -> KdfOptions.pbkdf2Time(KdfOptions.DEFAULT_ITER_TIME_MS);
                case "argon2id" -> KdfOptions.defaults(LuksVersion.LUKS2);
                default -> throw new IllegalArgumentException("--pbkdf " + type + ": supported are pbkdf2 and argon2id");
            };
        }
        if (p.has("--pbkdf-iterations") && p.has("--iter-time")) {
            throw new IllegalArgumentException("--pbkdf-iterations and --iter-time exclude each other");
        }
        int memory = p.has("--pbkdf-memory") ? p.integer("--pbkdf-memory") : k.memoryKiB();
        int cpus = p.has("--pbkdf-parallel") ? p.integer("--pbkdf-parallel") : k.cpus();
        k = new KdfOptions(k.argon2(), k.iterations(), k.iterTimeMillis(), memory, cpus);
        if (p.has("--pbkdf-iterations")) {
            k = k.withIterations(p.integer("--pbkdf-iterations"));
        } else if (p.has("--iter-time")) {
            k = k.withIterTime(p.integer("--iter-time"));
        }
        return k;
    }

    /** Bytes, or a number with a binary K/M/G/T suffix (qemu-img's convention). */
    static long parseSize(String text) {
        String t = text.trim().toUpperCase(Locale.ROOT);
        if (t.endsWith("B") && t.length() > 1 && !Character.isDigit(t.charAt(t.length() - 2))) {
            t = t.substring(0, t.length() - 1);
        }
        int shift = 0;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> shift = 10;
                case 'M' -> shift = 20;
                case 'G' -> shift = 30;
                case 'T' -> shift = 40;
                default -> shift = 0;
            }
        }
        String digits = shift == 0 ? t : t.substring(0, t.length() - 1);
        try {
            long n = Long.parseLong(digits);
            if (n <= 0 || n > (Long.MAX_VALUE >> shift)) {
                throw new NumberFormatException();
            }
            return n << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--size " + text + ": expected a positive size such as 1073741824, 512M or 20G");
        }
    }

    private record Parsed(Path imagePath, Map<String, String> options) {
        Path image() {
            if (imagePath == null) {
                throw new IllegalArgumentException("missing IMAGE");
            }
            return imagePath;
        }

        boolean has(String option) {
            return options.containsKey(option);
        }

        String value(String option) {
            String v = options.get(option);
            if (v == null) {
                throw new IllegalArgumentException("missing " + option);
            }
            return v;
        }

        Path path(String option) {
            return Path.of(value(option));
        }

        int integer(String option) {
            try {
                return Integer.parseInt(value(option));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " " + value(option) + ": expected an integer");
            }
        }
    }

    private static Parsed parse(List<String> args) {
        Map<String, String> options = new HashMap<>();
        Path image = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.startsWith("--")) {
                String name = a;
                String value = null;
                int eq = a.indexOf('=');
                if (eq > 0) {
                    name = a.substring(0, eq);
                    value = a.substring(eq + 1);
                }
                if (FLAGS.contains(name)) {
                    if (value != null) {
                        throw new IllegalArgumentException(name + " takes no value");
                    }
                    options.put(name, "");
                } else if (VALUED.contains(name)) {
                    if (value == null) {
                        if (i + 1 >= args.size()) {
                            throw new IllegalArgumentException(name + " needs a value");
                        }
                        value = args.get(++i);
                    }
                    options.put(name, value);
                } else if (name.equals("--key") || name.equals("--passphrase") || name.equals("--password")) {
                    // Deliberately unsupported: an argument is visible in ps, shell history and audit logs.
                    throw new IllegalArgumentException(name + " is not supported: secrets are read only from files (--key-file)");
                } else {
                    throw new IllegalArgumentException("unknown option " + name);
                }
            } else if (image == null) {
                image = Path.of(a);
            } else {
                // Not echoed: a misplaced argument might be a passphrase typed where it does not belong.
                throw new IllegalArgumentException("unexpected extra argument at position " + (i + 1) + " (only one IMAGE is taken)");
            }
        }
        return new Parsed(image, options);
    }
}
