package io.vhostblk.server;

import java.util.List;

/**
 * The line syntax shared by policy files and host configurations: {@code key = value} lines,
 * {@code #} comments, {@code [KIND NAME]} section headers. Each parser gives the meaning.
 */
final class ConfigLines {
    private ConfigLines() {
    }

    /** What a parser does with each line that is not blank or a comment. */
    interface Reader<E extends Exception> {
        /** A {@code [...]} header; {@code inside} is the text between the brackets, stripped. */
        void section(String inside, String raw, int line) throws E;

        /** A {@code key = value} line; both sides stripped, the key non-empty. */
        void entry(String key, String value, int line) throws E;

        /** The error for a malformed line, naming it. */
        E error(int line, String field, String problem);
    }

    /** Reads {@code lines}; {@code sectionForm} (like {@code [module NAME]}) is named in errors. */
    static <E extends Exception> void read(List<String> lines, String sectionForm, Reader<E> reader) throws E {
        for (int i = 0; i < lines.size(); i++) {
            int n = i + 1;
            String line = stripComment(lines.get(i)).strip();
            if (line.isEmpty()) {
                continue;
            }
            if (line.startsWith("[")) {
                if (!line.endsWith("]")) {
                    throw reader.error(n, shorten(line), "a section header ends with ']'");
                }
                reader.section(line.substring(1, line.length() - 1).strip(), line, n);
                continue;
            }
            int eq = line.indexOf('=');
            if (eq < 0) {
                throw reader.error(n, shorten(line), "expected 'key = value', a " + sectionForm + " section or a # comment");
            }
            String key = line.substring(0, eq).strip();
            if (key.isEmpty()) {
                throw reader.error(n, "'" + shorten(line) + "'", "no key before '='");
            }
            reader.entry(key, line.substring(eq + 1).strip(), n);
        }
    }

    /** A line without its comment: {@code #} at the start or after white space (so {@code dir#1} is a value). */
    static String stripComment(String line) {
        for (int i = 0; i < line.length(); i++) {
            if (line.charAt(i) == '#' && (i == 0 || Character.isWhitespace(line.charAt(i - 1)))) {
                return line.substring(0, i);
            }
        }
        return line;
    }

    /** Quoted text from a file is cut short, so a binary file cannot flood a message. */
    static String shorten(String s) {
        return s.length() <= 64 ? s : s.substring(0, 61) + "...";
    }
}
