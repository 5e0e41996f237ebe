package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Reads the tail of a process log for failure messages. */
final class Logs {
    private Logs() {
    }

    /** The last {@code lines} lines of {@code file}, or a note saying why there are none. */
    static String tail(Path file, int lines) {
        try {
            if (!Files.exists(file)) {
                return "(no log: " + file + " does not exist)";
            }
            List<String> all = Files.readAllLines(file, StandardCharsets.ISO_8859_1);
            if (all.isEmpty()) {
                return "(empty)";
            }
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(cannot read " + file + ": " + e + ")";
        }
    }
}
