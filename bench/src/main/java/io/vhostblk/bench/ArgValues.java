package io.vhostblk.bench;

import java.time.Duration;
import java.util.Locale;

/** Parses option values the way fio writes them: sizes {@code 4k, 128K, 8g} (binary) and durations {@code 10s, 500ms, 2m}. */
final class ArgValues {
    private ArgValues() {
    }

    /** A byte count with an optional K/M/G/T suffix (powers of 1024, optional trailing B or iB). */
    static long size(String option, String value) throws BenchUsageException {
        String v = value.trim().toUpperCase(Locale.ROOT);
        if (v.endsWith("IB")) {
            v = v.substring(0, v.length() - 2);
        } else if (v.length() > 1 && v.endsWith("B")) {
            v = v.substring(0, v.length() - 1);
        }
        int shift = 0;
        if (!v.isEmpty()) {
            shift = switch (v.charAt(v.length() - 1)) {
                case 'K' -> 10;
                case 'M' -> 20;
                case 'G' -> 30;
                case 'T' -> 40;
                default -> 0;
            };
        }
        String digits = shift == 0 ? v : v.substring(0, v.length() - 1);
        try {
            long n = Long.parseLong(digits);
            if (n <= 0 || n > (Long.MAX_VALUE >> shift)) {
                throw new BenchUsageException(option + ": '" + value + "' is out of range");
            }
            return n << shift;
        } catch (NumberFormatException e) {
            throw new BenchUsageException(option + ": '" + value + "' is not a size (examples: 4k, 128k, 1g)");
        }
    }

    /** A duration: a number with suffix ms, s or m; a bare number is seconds. Zero is allowed. */
    static Duration duration(String option, String value) throws BenchUsageException {
        String v = value.trim().toLowerCase(Locale.ROOT);
        try {
            if (v.endsWith("ms")) {
                return nonNegative(option, value, Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2))));
            }
            if (v.endsWith("s")) {
                return nonNegative(option, value, Duration.ofMillis(
                        Math.round(Double.parseDouble(v.substring(0, v.length() - 1)) * 1000)));
            }
            if (v.endsWith("m")) {
                return nonNegative(option, value, Duration.ofSeconds(Long.parseLong(v.substring(0, v.length() - 1)) * 60));
            }
            return nonNegative(option, value, Duration.ofMillis(Math.round(Double.parseDouble(v) * 1000)));
        } catch (NumberFormatException e) {
            throw new BenchUsageException(option + ": '" + value + "' is not a duration (examples: 10s, 500ms, 2m)");
        }
    }

    private static Duration nonNegative(String option, String value, Duration d) throws BenchUsageException {
        if (d.isNegative()) {
            throw new BenchUsageException(option + ": '" + value + "' is negative");
        }
        return d;
    }

    /** An integer in [min, max]. */
    static int integer(String option, String value, int min, int max) throws BenchUsageException {
        try {
            int n = Integer.parseInt(value.trim());
            if (n < min || n > max) {
                throw new BenchUsageException(option + ": " + n + " is outside " + min + ".." + max);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new BenchUsageException(option + ": '" + value + "' is not a number");
        }
    }
}
