package io.vhostblk.drivers;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What a {@link FaultyDriver} injects, parsed from {@code serve --inject SPEC}: comma-separated
 * {@code latency=500us}, {@code eio=START-END} (bytes, half-open, repeatable), {@code eio-nth=N},
 * {@code enospc-after=BYTES}, {@code short=N}, {@code power-cut} or {@code power-cut=N},
 * {@code reorder=SEED}. Sizes take K, M, G suffixes (binary).
 *
 * @param latencyNanos    added to every request's completion (0: none)
 * @param eioRanges       byte ranges {@code [start, end)}: a request touching one fails with EIO
 * @param eioNth          the N-th request of the device (counting from 1) fails with EIO (0: none)
 * @param enospcAfter     writes fail with ENOSPC once this many bytes were written (-1: never)
 * @param shortEvery      every N-th read or write reports a short transfer (0: none)
 * @param powerCut        keep the old data of unflushed writes and put it back when the driver closes
 * @param powerCutAfter   the device dies (every request fails with EIO) after this many writes (0: at close only)
 * @param reorderSeed     power cut: each unflushed, completed write survives with probability 1/2,
 *                        chosen by this seed, as a volatile cache writes back in any order (-1: all are lost)
 */
public record FaultSpec(long latencyNanos, List<long[]> eioRanges, long eioNth, long enospcAfter, long shortEvery,
                        boolean powerCut, long powerCutAfter, long reorderSeed) {

    /** Injects nothing. */
    public static final FaultSpec NONE = new FaultSpec(0, List.of(), 0, -1, 0, false, 0, -1);

    public FaultSpec {
        eioRanges = List.copyOf(eioRanges);
        if (!powerCut && (powerCutAfter > 0 || reorderSeed >= 0)) {
            throw new IllegalArgumentException("reorder and a power-cut count need power-cut");
        }
    }

    /** Parses a SPEC; the message of the exception names the term and what was expected. */
    public static FaultSpec parse(String spec) {
        long latency = 0;
        List<long[]> ranges = new ArrayList<>();
        long nth = 0;
        long enospc = -1;
        long shortEvery = 0;
        boolean cut = false;
        long cutAfter = 0;
        long seed = -1;
        if (spec.isBlank()) {
            throw new IllegalArgumentException("empty fault spec; expected terms like latency=500us,eio=0-4096");
        }
        for (String term : spec.split(",", -1)) {
            int eq = term.indexOf('=');
            String key = (eq < 0 ? term : term.substring(0, eq)).trim().toLowerCase(Locale.ROOT);
            String value = eq < 0 ? null : term.substring(eq + 1).trim();
            switch (key) {
                case "latency" -> latency = duration(term, need(term, value));
                case "eio" -> ranges.add(range(term, need(term, value)));
                case "eio-nth" -> nth = positive(term, need(term, value));
                case "enospc-after" -> enospc = size(term, need(term, value));
                case "short" -> shortEvery = positive(term, need(term, value));
                case "power-cut" -> {
                    cut = true;
                    cutAfter = value == null ? 0 : positive(term, value);
                }
                case "reorder" -> seed = number(term, need(term, value));
                default -> throw new IllegalArgumentException("'" + term + "': unknown fault; expected latency, eio, eio-nth, "
                        + "enospc-after, short, power-cut or reorder");
            }
        }
        if (seed >= 0 && !cut) {
            throw new IllegalArgumentException("'reorder=" + seed + "': needs power-cut");
        }
        return new FaultSpec(latency, ranges, nth, enospc, shortEvery, cut, cutAfter, seed);
    }

    /** Whether a request at {@code offset} of {@code length} bytes (at least one byte) touches an EIO range. */
    boolean inEioRange(long offset, long length) {
        for (long[] r : eioRanges) {
            if (offset < r[1] && offset + Math.max(length, 1) > r[0]) {
                return true;
            }
        }
        return false;
    }

    private static String need(String term, String value) {
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("'" + term + "': needs a value");
        }
        return value;
    }

    private static long number(String term, String v) {
        try {
            long n = Long.parseLong(v);
            if (n < 0) {
                throw new IllegalArgumentException("'" + term + "': must not be negative");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + term + "': '" + v + "' is not a number", e);
        }
    }

    private static long positive(String term, String v) {
        long n = number(term, v);
        if (n == 0) {
            throw new IllegalArgumentException("'" + term + "': must be at least 1");
        }
        return n;
    }

    private static long size(String term, String v) {
        String s = v.toUpperCase(Locale.ROOT);
        int shift = switch (s.isEmpty() ? ' ' : s.charAt(s.length() - 1)) {
            case 'K' -> 10;
            case 'M' -> 20;
            case 'G' -> 30;
            default -> 0;
        };
        long n = number(term, shift == 0 ? s : s.substring(0, s.length() - 1));
        if (n > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("'" + term + "': too large");
        }
        return n << shift;
    }

    private static long[] range(String term, String v) {
        int dash = v.indexOf('-');
        if (dash <= 0) {
            throw new IllegalArgumentException("'" + term + "': expected START-END (bytes, END exclusive)");
        }
        long start = size(term, v.substring(0, dash));
        long end = size(term, v.substring(dash + 1));
        if (end <= start) {
            throw new IllegalArgumentException("'" + term + "': END must be after START");
        }
        return new long[] {start, end};
    }

    private static long duration(String term, String v) {
        String s = v.toLowerCase(Locale.ROOT);
        int unitAt = 0;
        while (unitAt < s.length() && Character.isDigit(s.charAt(unitAt))) {
            unitAt++;
        }
        long n = number(term, s.substring(0, unitAt));
        long scale = switch (s.substring(unitAt)) {
            case "ns" -> 1;
            case "us" -> 1_000;
            case "ms" -> 1_000_000;
            case "s" -> 1_000_000_000;
            default -> throw new IllegalArgumentException("'" + term + "': unit must be ns, us, ms or s");
        };
        if (n > 60_000_000_000L / scale) {
            throw new IllegalArgumentException("'" + term + "': at most 60 s");
        }
        return n * scale;
    }
}
