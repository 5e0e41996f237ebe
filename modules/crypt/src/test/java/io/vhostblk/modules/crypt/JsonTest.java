package io.vhostblk.modules.crypt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {

    @Test
    void roundTripsLuks2LikeMetadata() {
        String text = "{\"keyslots\":{\"0\":{\"type\":\"luks2\",\"key_size\":64}},\"tokens\":{},"
                + "\"digests\":{\"0\":{\"keyslots\":[\"0\",\"1\"],\"ok\":true,\"none\":null}},\"s\":\"a\\\"b\\\\c\\u0041\"}";
        Object tree = Json.parse(text);
        assertEquals(64L, ((Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) tree).get("keyslots")).get("0")).get("key_size"));
        assertEquals(List.of("0", "1"), ((Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) tree).get("digests")).get("0")).get("keyslots"));
        assertEquals("a\"b\\cA", ((Map<?, ?>) tree).get("s"));
        assertEquals(tree, Json.parse(Json.write(tree)));
        assertEquals(tree, Json.parse(" \n" + text + "\n "));
    }

    @Test
    void writesCompactAsciiInInsertionOrder() {
        Map<String, Object> tree = new java.util.LinkedHashMap<>();
        tree.put("z", "32768");
        tree.put("a", List.of(1L, true, false));
        tree.put("n", null);
        tree.put("q", "say \"\\\u00e9\"");
        assertEquals("{\"z\":\"32768\",\"a\":[1,true,false],\"n\":null,\"q\":\"say \\\"\\\\\\u00E9\\\"\"}",
                Json.write(tree));
    }

    @Test
    void refusesNestingBeyondTheLimit() {
        String deep = "[".repeat(Json.MAX_DEPTH + 1) + "]".repeat(Json.MAX_DEPTH + 1);
        assertThrows(IllegalArgumentException.class, () -> Json.parse(deep));
        assertEquals(List.of(), Json.parse("[]"));
    }

    @Test
    void rejectsMalformedInput() {
        for (String bad : List.of("{", "{\"a\":}", "[1,]", "{\"a\":1.5}", "{} x", "\"unterminated", "{\"a\" 1}",
                "", "{\"a\":99999999999999999999}")) {
            assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
        }
    }
}
