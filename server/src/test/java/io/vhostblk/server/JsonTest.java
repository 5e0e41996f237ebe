package io.vhostblk.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The control socket's JSON (Jackson behind server/Json): what replies look like and what the reader refuses. */
class JsonTest {

    @Test
    void stringsAreEscapedAsJsonRequires() {
        assertEquals("\"a\\\"b\\\\c\"", Json.write("a\"b\\c"));
        assertEquals("\"\\n\\r\\t\\b\\f\"", Json.write("\n\r\t\b\f"));
        assertEquals("\"\\u0000\\u001F\\u007F\"", Json.write("\u0000\u001f\u007f"));
        assertEquals("\"\\u2028\\u2029\"", Json.write("\u2028\u2029"), "JavaScript line separators");
        assertEquals("\"é€/\"", Json.write("é€/"), "valid non-ASCII in the basic plane goes through as is");
        assertEquals("\"\\uD83D\\uDE00\"", Json.write("😀"), "a surrogate pair is written as two escapes");
        assertEquals("\"\\uD800x\\uDC00\"", Json.write("\ud800x\udc00"), "lone surrogates are escaped");
    }

    @Test
    void valuesOfEveryKindAreWritten() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", true);
        m.put("n", -42L);
        m.put("i", 7);
        m.put("half", 0.5);
        m.put("whole", 3.0);
        m.put("nan", Double.NaN);
        m.put("none", null);
        m.put("list", List.of(1, "two", List.of()));
        m.put("empty", Map.of());
        m.put("counts", new long[] {1, 2});
        m.put("other", java.nio.file.Path.of("/x y"));
        assertEquals("{\"ok\":true,\"n\":-42,\"i\":7,\"half\":0.5,\"whole\":3,\"nan\":null,\"none\":null,"
                + "\"list\":[1,\"two\",[]],\"empty\":{},\"counts\":[1,2],\"other\":\"/x y\"}", Json.write(m));
    }

    @Test
    void whatIsWrittenReadsBackTheSame() throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "q\"\\\n\u0001\u2028é😀\ud800");
        m.put("big", Long.MIN_VALUE);
        m.put("d", -1.25e-7);
        m.put("l", new ArrayList<>(List.of(true, false)));
        m.put("m", new LinkedHashMap<>(Map.of("k", "v")));
        m.put("nul", null);
        assertEquals(m, Json.parse(Json.write(m)));
        assertEquals(m, Json.parse(Json.pretty(Json.parse(Json.write(m)))), "pretty output is JSON too");
    }

    @Test
    void theReaderRefusesWhatIsNotJson() {
        for (String bad : List.of("", "{", "{\"a\"}", "{\"a\":1,}", "[1 2]", "\"abc", "\"\\x\"", "01", "1.", "-",
                "tru", "{} x", "\"a\u0001\"", "{a:1}", "[".repeat(100) + "]".repeat(100))) {
            Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse(bad), bad);
            assertTrue(e.getMessage().contains("at character"), e.getMessage());
        }
    }

    @Test
    void prettyIndentsTwoSpacesALevel() throws Exception {
        assertEquals("{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": \"x\"\n}", Json.pretty(Json.parse("{\"a\":[1,{}],\"b\":\"x\"}")));
    }
}
