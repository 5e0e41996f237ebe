package io.vhostblk.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.SerializableString;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.io.CharacterEscapes;
import com.fasterxml.jackson.core.io.SerializedString;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The control socket's JSON, through Jackson: replies are written from maps, lists, strings,
 * numbers, booleans and null (anything else as its string form, so no object's internals leak
 * into a reply); {@code vhost-blk ctl} and tests read them back as ordered maps, lists,
 * {@code Long} and {@code Double}.
 */
public final class Json {
    /** Nesting deeper than this is refused when reading (a reply is a few levels deep). */
    static final int MAX_DEPTH = 64;

    private static final ObjectMapper MAPPER = JsonMapper.builder(factory())
            .enable(DeserializationFeature.USE_LONG_FOR_INTS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();
    private static final DefaultPrettyPrinter PRETTY = new DefaultPrettyPrinter()
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n"))
            .withSeparators(Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withObjectEmptySeparator("").withArrayEmptySeparator(""));

    private Json() {
    }

    private static JsonFactory factory() {
        JsonFactory f = JsonFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build())
                .build();
        f.setCharacterEscapes(new Escapes());
        return f;
    }

    /** {@code value} as one line of JSON. Maps keep their order. */
    public static String write(Object value) {
        try {
            return MAPPER.writeValueAsString(plain(value, 0));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot write JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Indents a parsed value two spaces a level, for people. */
    public static String pretty(Object value) {
        try {
            return MAPPER.writer(PRETTY).writeValueAsString(plain(value, 0));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot write JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Text that is not JSON, with the character offset where reading stopped. */
    public static final class ParseException extends Exception {
        ParseException(String message, long at) {
            super(message + " at character " + at);
        }
    }

    /**
     * Reads one JSON value: objects become ordered maps, arrays lists, numbers {@code Long} when
     * whole and {@code Double} otherwise. Trailing text other than white space is an error.
     */
    public static Object parse(String text) throws ParseException {
        try {
            return MAPPER.readValue(text, Object.class);
        } catch (JsonProcessingException e) {
            JsonLocation where = e.getLocation();
            throw new ParseException(e.getOriginalMessage(), where == null ? 0 : Math.max(0, where.getCharOffset()));
        }
    }

    /**
     * The value as only JSON's own kinds: maps (string keys), lists, strings, longs, doubles
     * (whole ones as longs; NaN and infinities, which JSON lacks, as null), booleans and null.
     */
    private static Object plain(Object value, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("value nested deeper than " + MAX_DEPTH + " levels (a cycle?)");
        }
        return switch (value) {
            case null -> null;
            case Boolean b -> b;
            case Byte n -> n.longValue();
            case Short n -> n.longValue();
            case Integer n -> n.longValue();
            case Long n -> n;
            case Double d -> number(d);
            case Float f -> number(f.doubleValue());
            case Number n -> n.toString();
            case CharSequence s -> s.toString();
            case Map<?, ?> m -> {
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    out.put(String.valueOf(e.getKey()), plain(e.getValue(), depth + 1));
                }
                yield out;
            }
            case Collection<?> c -> {
                List<Object> out = new ArrayList<>(c.size());
                for (Object o : c) {
                    out.add(plain(o, depth + 1));
                }
                yield out;
            }
            case long[] a -> {
                List<Object> out = new ArrayList<>(a.length);
                for (long x : a) {
                    out.add(x);
                }
                yield out;
            }
            default -> value.toString();
        };
    }

    private static Object number(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            return null;
        }
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? (Object) (long) d : (Object) d;
    }

    /**
     * Beyond JSON's required escapes: DEL, U+2028/U+2029 (line breaks to JavaScript), so a reply
     * stays one line for any reader, and UTF-16 surrogates.
     */
    private static final class Escapes extends CharacterEscapes {
        private final int[] ascii;

        Escapes() {
            ascii = CharacterEscapes.standardAsciiEscapesForJSON();
            ascii[0x7f] = CharacterEscapes.ESCAPE_STANDARD;
        }

        @Override
        public int[] getEscapeCodesForAscii() {
            return ascii;
        }

        @Override
        public SerializableString getEscapeSequence(int ch) {
            // Surrogates are escaped one UTF-16 unit at a time (Jackson shows no pairs here): a pair
            // becomes two escapes any reader joins again, and a lone one cannot turn into '?' in UTF-8.
            if (ch == 0x2028 || ch == 0x2029 || Character.isSurrogate((char) ch)) {
                return new SerializedString(String.format("\\u%04X", ch));
            }
            return null;
        }
    }
}
