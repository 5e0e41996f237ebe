package io.vhostblk.hooks;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModuleSettingsTest {

    @Test
    void sizesTakeBinarySuffixes() {
        assertEquals(4096, ModuleSettings.parseBytes("4096"));
        assertEquals(64L << 20, ModuleSettings.parseBytes("64M"));
        assertEquals(2L << 30, ModuleSettings.parseBytes("2GiB"));
        assertEquals(1L << 40, ModuleSettings.parseBytes(" 1t "));
        assertEquals(-1, ModuleSettings.parseBytes("1.5G"));
        assertEquals(-1, ModuleSettings.parseBytes("-4K"));
        assertEquals(-1, ModuleSettings.parseBytes("M"));
        assertEquals(-1, ModuleSettings.parseBytes("99999999999T"));
    }

    @Test
    void aBadSizeNamesWhereItWasSet() throws ModuleException {
        ModuleSettings s = new ModuleSettings("cache", Map.of("size", "lots"), Map.of("size", "policy.conf:7"));
        ModuleException e = assertThrows(ModuleException.class, () -> s.bytes("size", -1, 1, Long.MAX_VALUE));
        assertTrue(e.getMessage().startsWith("policy.conf:7: module cache: setting size:"), e.getMessage());
        assertEquals(5, ModuleSettings.empty("cache").bytes("size", 5, 1, 10));
    }
}
