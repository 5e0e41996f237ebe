package io.vhostblk.hooks;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/** SHA-256 digests as policies write them: 64 lower-case hex digits. */
public final class Sha256 {
    private static final Pattern HEX64 = Pattern.compile("[0-9a-fA-F]{64}");

    private Sha256() {
    }

    /** The digest of {@code bytes} in lower-case hex. */
    public static String of(byte[] bytes) {
        return HexFormat.of().formatHex(digest().digest(bytes));
    }

    /** The digest of the file {@code path}, read in chunks (a jar of many MB costs no heap of its size). */
    public static String of(Path path) throws IOException {
        MessageDigest md = digest();
        byte[] buf = new byte[64 * 1024];
        try (InputStream in = Files.newInputStream(path)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** Whether {@code text} is 64 hex digits (either case). */
    public static boolean valid(String text) {
        return HEX64.matcher(text).matches();
    }

    static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            // Every Java platform must provide SHA-256 (MessageDigest's documented guarantee).
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
