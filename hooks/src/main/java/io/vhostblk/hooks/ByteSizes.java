package io.vhostblk.hooks;

import java.util.Locale;

/**
 * Byte counts as qemu-img and fio write them: {@code 512}, {@code 64K}, {@code 8G} (binary multiples K, M, G,
 * T; an optional trailing {@code B} or {@code iB}). One parser for every command line and configuration file.
 */
public final class ByteSizes {
    private ByteSizes() {
    }

    /** Parses a positive size; the message of the exception says what is wrong with {@code text}. */
    public static long parse(String text) {
        String v = text.trim().toUpperCase(Locale.ROOT);
        if (v.endsWith("IB")) {
            v = v.substring(0, v.length() - 2);
        } else if (v.endsWith("B") && v.length() > 1 && !Character.isDigit(v.charAt(v.length() - 2))) {
            v = v.substring(0, v.length() - 1);
        }
        int shift = v.isEmpty() ? 0 : switch (v.charAt(v.length() - 1)) {
            case 'K' -> 10;
            case 'M' -> 20;
            case 'G' -> 30;
            case 'T' -> 40;
            default -> 0;
        };
        long n;
        try {
            n = Long.parseLong(shift == 0 ? v : v.substring(0, v.length() - 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a size (examples: 1048576, 512M, 8G)");
        }
        if (n <= 0 || n > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("'" + text + "' is out of range");
        }
        return n << shift;
    }

    /** Prints a size in the largest unit that divides it exactly. */
    public static String format(long bytes) {
        String[] units = {"T", "G", "M", "K"};
        int[] shifts = {40, 30, 20, 10};
        for (int i = 0; i < units.length; i++) {
            long unit = 1L << shifts[i];
            if (bytes >= unit && bytes % unit == 0) {
                return (bytes / unit) + units[i];
            }
        }
        return Long.toString(bytes);
    }

    /** {@code @Option(converter = ByteSizes.Converter.class)} for a {@code long} size option. */
    public static final class Converter extends CommandKit.Converter<Long> {
        public Converter() {
            super(ByteSizes::parse);
        }
    }
}
