package io.vhostblk.server;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The control socket's JSON: a writer for replies (maps, lists, strings, numbers, booleans, null)
 * and a small reader for {@code vhost-blk ctl} and tests. No library: the replies are tiny.
 */
public final class Json {
    /** Nesting deeper than this is refused when reading (a reply is a few levels deep). */
    static final int MAX_DEPTH = 64;

    private Json() {
    }

    /** {@code value} as one line of JSON. Maps keep their order; other objects are written as their string form. */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object value, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("value nested deeper than " + MAX_DEPTH + " levels (a cycle?)");
        }
        switch (value) {
            case null -> sb.append("null");
            case Boolean b -> sb.append(b);
            case Byte n -> sb.append(n);
            case Short n -> sb.append(n);
            case Integer n -> sb.append(n);
            case Long n -> sb.append(n);
            case Double d -> number(sb, d);
            case Float f -> number(sb, f.doubleValue());
            case Number n -> string(sb, n.toString());
            case CharSequence s -> string(sb, s.toString());
            case Map<?, ?> m -> {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    string(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue(), depth + 1);
                }
                sb.append('}');
            }
            case Collection<?> c -> {
                sb.append('[');
                boolean first = true;
                for (Object o : c) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    write(sb, o, depth + 1);
                }
                sb.append(']');
            }
            case long[] a -> {
                List<Long> l = new ArrayList<>(a.length);
                for (long x : a) {
                    l.add(x);
                }
                write(sb, l, depth);
            }
            default -> string(sb, value.toString());
        }
    }

    /** JSON has no NaN or infinities: those become null. */
    private static void number(StringBuilder sb, double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            sb.append("null");
        } else if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            sb.append((long) d);
        } else {
            sb.append(d);
        }
    }

    /** A JSON string literal: quotes, backslashes and control characters escaped; U+2028/9 and lone surrogates too. */
    static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    boolean lone = Character.isHighSurrogate(c)
                            ? i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))
                            : Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(s.charAt(i - 1)));
                    if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029' || lone) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Text that is not JSON, with the character offset where reading stopped. */
    public static final class ParseException extends Exception {
        ParseException(String message, int at) {
            super(message + " at character " + at);
        }
    }

    /**
     * Reads one JSON value: objects become ordered maps, arrays lists, numbers {@code Long} when
     * whole and {@code Double} otherwise. Trailing text other than white space is an error.
     */
    public static Object parse(String text) throws ParseException {
        Reader r = new Reader(text);
        r.space();
        Object v = r.value(0);
        r.space();
        if (r.at < text.length()) {
            throw new ParseException("unexpected text after the value", r.at);
        }
        return v;
    }

    /** Indents a parsed value two spaces a level, for people. */
    public static String pretty(Object value) {
        StringBuilder sb = new StringBuilder();
        pretty(sb, value, 0);
        return sb.toString();
    }

    private static void pretty(StringBuilder sb, Object value, int level) {
        String pad = "  ".repeat(level + 1);
        if (value instanceof Map<?, ?> m && !m.isEmpty()) {
            sb.append("{\n");
            int i = 0;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                sb.append(pad);
                string(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                pretty(sb, e.getValue(), level + 1);
                sb.append(++i < m.size() ? ",\n" : "\n");
            }
            sb.append("  ".repeat(level)).append('}');
        } else if (value instanceof List<?> l && !l.isEmpty()) {
            sb.append("[\n");
            for (int i = 0; i < l.size(); i++) {
                sb.append(pad);
                pretty(sb, l.get(i), level + 1);
                sb.append(i + 1 < l.size() ? ",\n" : "\n");
            }
            sb.append("  ".repeat(level)).append(']');
        } else {
            write(sb, value, 0);
        }
    }

    /** A recursive-descent reader over one string. */
    private static final class Reader {
        private final String s;
        private int at;

        Reader(String s) {
            this.s = s;
        }

        void space() {
            while (at < s.length() && " \t\r\n".indexOf(s.charAt(at)) >= 0) {
                at++;
            }
        }

        Object value(int depth) throws ParseException {
            if (depth > MAX_DEPTH) {
                throw new ParseException("nested deeper than " + MAX_DEPTH + " levels", at);
            }
            if (at >= s.length()) {
                throw new ParseException("unexpected end of text", at);
            }
            char c = s.charAt(at);
            return switch (c) {
                case '{' -> object(depth);
                case '[' -> array(depth);
                case '"' -> string();
                case 't' -> literal("true", Boolean.TRUE);
                case 'f' -> literal("false", Boolean.FALSE);
                case 'n' -> literal("null", null);
                default -> {
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        yield number();
                    }
                    throw new ParseException("unexpected character '" + c + "'", at);
                }
            };
        }

        private Map<String, Object> object(int depth) throws ParseException {
            Map<String, Object> m = new LinkedHashMap<>();
            at++;
            space();
            if (peek('}')) {
                at++;
                return m;
            }
            while (true) {
                space();
                if (!peek('"')) {
                    throw new ParseException("expected a member name", at);
                }
                String key = string();
                space();
                expect(':');
                space();
                m.put(key, value(depth + 1));
                space();
                if (peek(',')) {
                    at++;
                } else {
                    expect('}');
                    return m;
                }
            }
        }

        private List<Object> array(int depth) throws ParseException {
            List<Object> l = new ArrayList<>();
            at++;
            space();
            if (peek(']')) {
                at++;
                return l;
            }
            while (true) {
                space();
                l.add(value(depth + 1));
                space();
                if (peek(',')) {
                    at++;
                } else {
                    expect(']');
                    return l;
                }
            }
        }

        private String string() throws ParseException {
            StringBuilder sb = new StringBuilder();
            at++;
            while (true) {
                if (at >= s.length()) {
                    throw new ParseException("unterminated string", at);
                }
                char c = s.charAt(at++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c < 0x20) {
                    throw new ParseException("control character in a string", at - 1);
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (at >= s.length()) {
                    throw new ParseException("unterminated escape", at);
                }
                char e = s.charAt(at++);
                switch (e) {
                    case '"', '\\', '/' -> sb.append(e);
                    case 'n' -> sb.append('\n');
                    case 'r' -> sb.append('\r');
                    case 't' -> sb.append('\t');
                    case 'b' -> sb.append('\b');
                    case 'f' -> sb.append('\f');
                    case 'u' -> {
                        if (at + 4 > s.length()) {
                            throw new ParseException("short \\u escape", at);
                        }
                        try {
                            sb.append((char) Integer.parseInt(s.substring(at, at + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw new ParseException("bad \\u escape", at);
                        }
                        at += 4;
                    }
                    default -> throw new ParseException("bad escape '\\" + e + "'", at - 1);
                }
            }
        }

        private Object number() throws ParseException {
            int start = at;
            if (peek('-')) {
                at++;
            }
            while (at < s.length() && "0123456789.eE+-".indexOf(s.charAt(at)) >= 0) {
                at++;
            }
            String n = s.substring(start, at);
            try {
                if (n.matches("-?(0|[1-9][0-9]*)")) {
                    return Long.parseLong(n);
                }
                if (n.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) {
                    return Double.parseDouble(n);
                }
            } catch (NumberFormatException e) {
                throw new ParseException("number '" + n + "' out of range", start);
            }
            throw new ParseException("malformed number '" + n + "'", start);
        }

        private Object literal(String word, Object value) throws ParseException {
            if (!s.startsWith(word, at)) {
                throw new ParseException("unexpected word", at);
            }
            at += word.length();
            return value;
        }

        private boolean peek(char c) {
            return at < s.length() && s.charAt(at) == c;
        }

        private void expect(char c) throws ParseException {
            if (!peek(c)) {
                throw new ParseException("expected '" + c + "'", at);
            }
            at++;
        }
    }
}
