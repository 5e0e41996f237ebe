package io.vhostblk.hooks;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModuleSettingsTest {

    @Test
    void aBadSizeNamesWhereItWasSet() throws ModuleException {
        ModuleSettings s = new ModuleSettings("cache", Map.of("size", "lots"), Map.of("size", "policy.conf:7"));
        ModuleException e = assertThrows(ModuleException.class, () -> s.bytes("size", -1, 1, Long.MAX_VALUE));
        assertTrue(e.getMessage().startsWith("policy.conf:7: module cache: setting size:"), e.getMessage());
        assertEquals(5, ModuleSettings.empty("cache").bytes("size", 5, 1, 10));
        ModuleSettings big = new ModuleSettings("cache", Map.of("size", "64M"), Map.of("size", "policy.conf:8"));
        assertEquals(64L << 20, big.bytes("size", -1, 1, Long.MAX_VALUE));
        e = assertThrows(ModuleException.class, () -> big.bytes("size", -1, 1, 1 << 20));
        assertTrue(e.getMessage().contains("outside"), e.getMessage());
    }
}
