package io.vhostblk.modules.crypt;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.json.JsonWriteFeature;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The LUKS2 metadata area's JSON, through Jackson's streaming core: objects become insertion-ordered maps
 * (so a header is written back with cryptsetup's key order), arrays lists, integers {@code Long}, plus strings,
 * booleans and null. LUKS2 keeps 64-bit values (offsets, sizes) in strings and has no fractions, so a
 * non-integer number is refused rather than rounded. Written compactly, in ASCII: the area is ASCII text.
 */
final class Json {
    /** LUKS2 metadata is a few levels deep; anything much deeper is damage or an attack. */
    static final int MAX_DEPTH = 64;

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build())
            .enable(JsonWriteFeature.ESCAPE_NON_ASCII)
            .build();

    private Json() {
    }

    /** Parses one JSON value covering all of {@code text} (surrounding whitespace allowed). */
    static Object parse(String text) {
        try (JsonParser p = FACTORY.createParser(text)) {
            if (p.nextToken() == null) {
                throw error(p, "unexpected end");
            }
            Object value = value(p);
            if (p.nextToken() != null) {
                throw error(p, "trailing characters");
            }
            return value;
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("JSON " + e.getOriginalMessage() + " at offset "
                    + (e.getLocation() != null ? e.getLocation().getCharOffset() : -1), e);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // reading a String does no I/O
        }
    }

    private static Object value(JsonParser p) throws IOException {
        JsonToken t = p.currentToken();
        return switch (t) {
            case START_OBJECT -> {
                Map<String, Object> map = new LinkedHashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    p.nextToken();
                    map.put(name, value(p));
                }
                yield map;
            }
            case START_ARRAY -> {
                List<Object> list = new ArrayList<>();
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    list.add(value(p));
                }
                yield list;
            }
            case VALUE_STRING -> p.getText();
            case VALUE_NUMBER_INT -> {
                if (p.getNumberType() != JsonParser.NumberType.INT && p.getNumberType() != JsonParser.NumberType.LONG) {
                    throw error(p, "bad integer '" + p.getText() + "'");
                }
                yield p.getLongValue();
            }
            case VALUE_NUMBER_FLOAT -> throw error(p, "non-integer number");
            case VALUE_TRUE -> Boolean.TRUE;
            case VALUE_FALSE -> Boolean.FALSE;
            case VALUE_NULL -> null;
            default -> throw error(p, "unexpected " + t);
        };
    }

    private static IllegalArgumentException error(JsonParser p, String what) {
        return new IllegalArgumentException("JSON " + what + " at offset " + p.currentTokenLocation().getCharOffset());
    }

    /** Serialises a tree of maps, lists, strings, numbers, booleans and nulls compactly. */
    static String write(Object value) {
        StringWriter out = new StringWriter();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            write(g, value);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // writing a String does no I/O
        }
        return out.toString();
    }

    private static void write(JsonGenerator g, Object v) throws IOException {
        switch (v) {
            case null -> g.writeNull();
            case Map<?, ?> m -> {
                g.writeStartObject();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    g.writeFieldName((String) e.getKey());
                    write(g, e.getValue());
                }
                g.writeEndObject();
            }
            case List<?> l -> {
                g.writeStartArray();
                for (Object o : l) {
                    write(g, o);
                }
                g.writeEndArray();
            }
            case String s -> g.writeString(s);
            case Number n -> g.writeNumber(n.longValue());
            case Boolean b -> g.writeBoolean(b);
            default -> throw new IllegalArgumentException("cannot write " + v.getClass().getSimpleName() + " as JSON");
        }
    }
}
