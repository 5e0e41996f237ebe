package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code vhost-blk crypt format|add-key|remove-key|change-key|dump}: LUKS image administration, one picocli
 * command per action, run through {@link CommandKit} like the server's own commands.
 *
 * <p>Secrets come only from files ({@code --key-file}, {@code --new-key-file}), never from an argument, and are
 * read whole like {@code cryptsetup --key-file} and QEMU's {@code secret,file=}: a trailing newline is part of the
 * passphrase (write the file with {@code printf '%s'}, or pass the same file to every tool).
 *
 * <p>Exit codes follow cryptsetup's: 0 success, 1 bad arguments, 2 wrong passphrase, 4 unusable image or key
 * file (the message names the file and the field).
 */
@Command(name = "crypt", header = "LUKS images: format, add-key, remove-key, change-key, dump", exitCodeOnInvalidInput = CryptCommand.USAGE,
        description = {"LUKS images: format, add-key, remove-key, change-key, dump. Key files are used "
                + "whole, trailing newline included (as cryptsetup --key-file and QEMU secret "
                + "file=). Exit status: 0 done, 1 bad arguments, 2 wrong passphrase, 4 unusable "
                + "image or key file.", ""},
        subcommands = {CryptCommand.Format.class, CryptCommand.AddKey.class, CryptCommand.RemoveKey.class,
                CryptCommand.ChangeKey.class, CryptCommand.Dump.class})
public final class CryptCommand extends CommandKit.CommandGroup {

    public static final int OK = 0;
    public static final int USAGE = 1;
    public static final int WRONG_PASSPHRASE = 2;
    public static final int BAD_IMAGE = 4;

    private final PrintStream out;
    private final PrintStream err;

    /** For picocli, as a sub-command of {@code vhost-blk}. */
    public CryptCommand() {
        this(System.out, System.err);
    }

    /** For running on its own: prints to {@code out} and {@code err}. */
    public CryptCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    /** Runs one command line (the words after {@code crypt}); returns the exit code after printing any reason. */
    public int run(List<String> args) {
        return CommandKit.execute(new CryptCommand(), args, out, err);
    }

    /** What every action takes: the image, and a refusal of secrets on the command line. */
    abstract static class Action extends CommandKit.Action {
        @Parameters(index = "0", paramLabel = "IMAGE", description = "the LUKS image (a file or block device)")
        Path image;

        // Deliberately unsupported: an argument is visible in ps, shell history and audit logs.
        @Option(names = {"--key", "--passphrase", "--password"}, hidden = true)
        String secretArgument;

        @Override
        protected final void checkArguments() throws CommandUsageException {
            if (secretArgument != null) {
                throw new CommandUsageException("--key, --passphrase and --password are not supported: secrets are read"
                        + " only from files (--key-file)");
            }
        }

        @Override
        protected final int exitStatusOf(Exception failure) {
            return switch (failure) {
                case WrongPassphraseException w -> WRONG_PASSPHRASE;
                case IllegalArgumentException i -> USAGE;
                // LuksException messages already name the file and field; other I/O errors name the file themselves.
                case IOException e -> BAD_IMAGE;
                default -> unexpected(failure);
            };
        }

        @Override
        protected final String describe(Exception failure) {
            return failure instanceof IOException e ? CryptCommand.describe(e) : failure.getMessage();
        }

        @Override
        protected abstract int act() throws IOException;

        /** A key file option the action cannot do without (checked here, so a secret typed as an argument is reported first). */
        static Path required(Path value, String option) {
            if (value == null) {
                throw new IllegalArgumentException(option + " FILE is required");
            }
            return value;
        }
    }

    /** The key-derivation options of the commands that write a key slot. */
    static final class KdfArgs {
        @Option(names = "--pbkdf", paramLabel = "pbkdf2|argon2id", description = "key derivation (default: pbkdf2 for LUKS1, argon2id for LUKS2)")
        String pbkdf;

        @Option(names = "--pbkdf-iterations", paramLabel = "N", description = "PBKDF2 count or Argon2 time cost (instead of --iter-time)")
        Integer iterations;

        @Option(names = "--iter-time", paramLabel = "MS", description = "milliseconds the derivation should take. Default 2000")
        Integer iterTime;

        @Option(names = "--pbkdf-memory", paramLabel = "KIB", description = "Argon2 memory cost")
        Integer memory;

        @Option(names = "--pbkdf-parallel", paramLabel = "N", description = "Argon2 threads")
        Integer parallel;

        /** KDF from the options, defaulting per version (PBKDF2 for LUKS1, Argon2id for LUKS2, 2 s). */
        KdfOptions kdf(LuksVersion version) {
            KdfOptions k = KdfOptions.defaults(version);
            if (pbkdf != null) {
                String type = pbkdf.toLowerCase(Locale.ROOT);
                k = switch (type) {
                    case "pbkdf2" -> KdfOptions.pbkdf2Time(KdfOptions.DEFAULT_ITER_TIME_MS);
                    case "argon2id" -> KdfOptions.defaults(LuksVersion.LUKS2);
                    default -> throw new IllegalArgumentException("--pbkdf " + type + ": supported are pbkdf2 and argon2id");
                };
            }
            if (iterations != null && iterTime != null) {
                throw new IllegalArgumentException("--pbkdf-iterations and --iter-time exclude each other");
            }
            k = new KdfOptions(k.argon2(), k.iterations(), k.iterTimeMillis(), memory != null ? memory : k.memoryKiB(),
                    parallel != null ? parallel : k.cpus());
            if (iterations != null) {
                k = k.withIterations(iterations);
            } else if (iterTime != null) {
                k = k.withIterTime(iterTime);
            }
            return k;
        }
    }

    @Command(name = "format", exitCodeOnInvalidInput = USAGE, description = "write a new LUKS header with key slot 0")
    static final class Format extends Action {
        @Option(names = "--key-file", paramLabel = "FILE", description = "the passphrase file for key slot 0")
        Path keyFile;

        @Option(names = "--luks1", description = "LUKS1 (default: LUKS2)")
        boolean luks1;

        @Option(names = "--luks2", description = "LUKS2 (the default)")
        boolean luks2;

        @Option(names = "--sector-size", paramLabel = "512|4096", description = "encryption sector size. Default 512")
        int sectorSize = 512;

        @Option(names = "--size", paramLabel = "SIZE", converter = ByteSizes.Converter.class,
                description = "the payload the guest sees: bytes, or with K, M, G or T (binary) suffix")
        long size;

        @Mixin
        KdfArgs kdf;

        @Override
        protected int act() throws IOException {
            if (luks1 && luks2) {
                throw new IllegalArgumentException("--luks1 and --luks2 exclude each other");
            }
            LuksVersion version = luks1 ? LuksVersion.LUKS1 : LuksVersion.LUKS2;
            FormatOptions options = new FormatOptions(version, sectorSize, size, kdf.kdf(version));
            try (Secret s = Secret.fromFile(required(keyFile, "--key-file"))) {
                LuksVolume.format(image, s, options);
            }
            out.println("Formatted " + image + " as " + version + " (aes-xts-plain64, " + sectorSize + "-byte sectors), key slot 0");
            return OK;
        }
    }

    /** add-key and change-key: a passphrase the image takes, a new one, and how to derive its key slot's key. */
    abstract static class Rekey extends Action {
        @Option(names = "--key-file", paramLabel = "FILE", description = "a passphrase the image takes")
        Path keyFile;

        @Option(names = "--new-key-file", paramLabel = "FILE", description = "the new passphrase")
        Path newKeyFile;

        @Mixin
        KdfArgs kdf;

        @Override
        protected final int act() throws IOException {
            LuksVersion version = versionOf(image);
            try (Secret existing = Secret.fromFile(required(keyFile, "--key-file"));
                 Secret added = Secret.fromFile(required(newKeyFile, "--new-key-file"))) {
                out.println(rekey(existing, added, kdf.kdf(version)));
            }
            return OK;
        }

        /** Does the change; returns what to tell the administrator. */
        abstract String rekey(Secret existing, Secret added, KdfOptions kdf) throws IOException;
    }

    @Command(name = "add-key", exitCodeOnInvalidInput = USAGE, description = "add a passphrase in a free key slot")
    static final class AddKey extends Rekey {
        @Override
        String rekey(Secret existing, Secret added, KdfOptions kdf) throws IOException {
            return "Added key slot " + LuksVolume.addKey(image, existing, added, kdf) + " to " + image;
        }
    }

    @Command(name = "remove-key", exitCodeOnInvalidInput = USAGE, description = "remove the key slot the passphrase opens (or --key-slot N)")
    static final class RemoveKey extends Action {
        @Option(names = "--key-file", paramLabel = "FILE", description = "a passphrase the image takes")
        Path keyFile;

        @Option(names = "--key-slot", paramLabel = "N", description = "the slot to remove (default: the one the passphrase opens)")
        Integer keySlot;

        @Override
        protected int act() throws IOException {
            try (Secret s = Secret.fromFile(required(keyFile, "--key-file"))) {
                int slot;
                if (keySlot != null) {
                    slot = keySlot;
                    LuksVolume.removeSlot(image, slot, s);
                } else {
                    slot = LuksVolume.removeKey(image, s);
                }
                out.println("Removed key slot " + slot + " from " + image);
            }
            return OK;
        }
    }

    @Command(name = "change-key", exitCodeOnInvalidInput = USAGE, description = "replace a passphrase (--key-file) with another (--new-key-file)")
    static final class ChangeKey extends Rekey {
        @Override
        String rekey(Secret existing, Secret added, KdfOptions kdf) throws IOException {
            int slot = LuksVolume.changeKey(image, existing, added, kdf);
            return "Changed passphrase of " + image + "; it is now in key slot " + slot;
        }
    }

    @Command(name = "dump", exitCodeOnInvalidInput = USAGE, description = "print the header (no key material)")
    static final class Dump extends Action {
        @Override
        protected int act() throws IOException {
            out.print(LuksVolume.dump(image));
            return OK;
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

    private static LuksVersion versionOf(Path image) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.READ)) {
            return LuksHeader.read(image, ch).version();
        } catch (java.nio.file.NoSuchFileException e) {
            throw new LuksException(image, "image", "does not exist", e);
        }
    }
}
