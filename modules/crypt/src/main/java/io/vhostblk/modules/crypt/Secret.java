package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/** A passphrase or key-file content held as bytes, never as a String, and zeroed by {@link #close()}. */
public final class Secret implements AutoCloseable {

    /** cryptsetup's default key-file size limit; a larger file is almost certainly the wrong file. */
    public static final int MAX_KEY_FILE_BYTES = 8 * 1024 * 1024;

    private final byte[] bytes;
    private boolean wiped;

    private Secret(byte[] bytes) {
        this.bytes = bytes;
    }

    /**
     * Takes ownership of {@code bytes} (no copy, so the caller has no second copy to forget):
     * they are zeroed when this secret is closed.
     */
    public static Secret wrap(byte[] bytes) {
        if (bytes.length == 0) {
            throw new IllegalArgumentException("empty secret: LUKS (like cryptsetup) refuses an empty passphrase");
        }
        return new Secret(bytes);
    }

    /** Copies {@code bytes}; the caller still owns and must wipe its array. */
    public static Secret copyOf(byte[] bytes) {
        return wrap(bytes.clone());
    }

    /**
     * Reads a key file or passphrase file whole, exactly as {@code cryptsetup --key-file FILE} and QEMU's
     * {@code secret,file=FILE} do: every byte is part of the secret, a trailing newline included. A file written
     * with {@code echo pass > f} therefore has the passphrase {@code "pass\n"}, the same for all three tools.
     */
    public static Secret fromFile(Path file) throws IOException {
        FileChannel opened;
        try {
            opened = FileChannel.open(file, StandardOpenOption.READ);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new LuksException(file, "key file", "does not exist", e);
        } catch (java.nio.file.AccessDeniedException e) {
            throw new LuksException(file, "key file", "is not readable (permission denied)", e);
        }
        try (FileChannel ch = opened) {
            long size = ch.size();
            if (size == 0) {
                throw new LuksException(file, "key file", "is empty");
            }
            if (size > MAX_KEY_FILE_BYTES) {
                throw new LuksException(file, "key file", "is " + size + " bytes, over the " + MAX_KEY_FILE_BYTES + "-byte limit");
            }
            // Read straight into the final array: no growing buffers that would leave stray copies behind.
            byte[] buf = new byte[(int) size];
            ByteBuffer bb = ByteBuffer.wrap(buf);
            while (bb.hasRemaining()) {
                if (ch.read(bb) < 0) {
                    Arrays.fill(buf, (byte) 0);
                    throw new LuksException(file, "key file", "shrank while being read");
                }
            }
            return new Secret(buf);
        }
    }

    /** The secret's bytes, shared not copied; valid until {@link #close()}. */
    byte[] bytes() {
        if (wiped) {
            throw new IllegalStateException("secret already wiped");
        }
        return bytes;
    }

    /** Number of bytes; not secret in LUKS (the KDF hides it anyway). */
    public int length() {
        return bytes.length;
    }

    /** Zeroes the bytes; idempotent. */
    @Override
    public void close() {
        Arrays.fill(bytes, (byte) 0);
        wiped = true;
    }

    @Override
    public String toString() {
        return "Secret[redacted]";
    }
}
