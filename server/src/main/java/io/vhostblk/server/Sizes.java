package io.vhostblk.server;

import java.util.Locale;

/** Parses and prints byte sizes the way qemu-img does: 512, 64K, 8G (binary multiples). */
public final class Sizes {
    private Sizes() {
    }

    /** Parses {@code value} for option {@code option}; suffixes K, M, G, T (powers of 1024), optional trailing B/iB. */
    public static long parse(String option, String value) throws UsageException {
        String v = value.trim().toUpperCase(Locale.ROOT);
        if (v.endsWith("IB")) {
            v = v.substring(0, v.length() - 2);
        } else if (v.endsWith("B") && v.length() > 1 && !Character.isDigit(v.charAt(v.length() - 2))) {
            v = v.substring(0, v.length() - 1);
        }
        int shift = 0;
        if (!v.isEmpty()) {
            switch (v.charAt(v.length() - 1)) {
                case 'K' -> shift = 10;
                case 'M' -> shift = 20;
                case 'G' -> shift = 30;
                case 'T' -> shift = 40;
                default -> shift = 0;
            }
        }
        String digits = shift == 0 ? v : v.substring(0, v.length() - 1);
        long n;
        try {
            n = Long.parseLong(digits);
        } catch (NumberFormatException e) {
            throw new UsageException(option + ": '" + value + "' is not a size (examples: 1048576, 512M, 8G)");
        }
        if (n <= 0 || n > (Long.MAX_VALUE >> shift)) {
            throw new UsageException(option + ": '" + value + "' is out of range");
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
}
