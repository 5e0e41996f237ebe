package io.vhostblk.server;

/** Sets up {@code System.Logger} output: one line per record, timestamped, on standard error. */
final class Logging {
    private Logging() {
    }

    static void configure() {
        // System.Logger is backed by java.util.logging here; its default format spans two lines,
        // which defeats grep by device. An operator's own format (the same property) wins.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format",
                    "%1$tF %1$tT.%1$tL %4$s %3$s: %5$s%6$s%n");
        }
    }
}
