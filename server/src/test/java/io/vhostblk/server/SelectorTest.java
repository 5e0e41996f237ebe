package io.vhostblk.server;

import io.vhostblk.hooks.DeviceInfo;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SelectorTest {
    private static DeviceInfo device(String id, String vm, String driver) {
        return new DeviceInfo(id, vm, driver, 1 << 20, false, "x");
    }

    @Test
    void emptyListsMatchEverything() {
        assertTrue(Selector.ANY.matches(device("a", "b", "ram")));
    }

    @Test
    void globsMatchWholeNames() {
        Selector s = new Selector(List.of("disk?", "root-*"), List.of("web*"), List.of("io_uring", "file"));
        assertTrue(s.matches(device("disk1", "web1", "file")));
        assertTrue(s.matches(device("root-", "web", "io_uring")));
        assertTrue(s.matches(device("root-vda", "webserver", "io_uring")));
        assertFalse(s.matches(device("disk10", "web1", "file")), "? is exactly one character");
        assertFalse(s.matches(device("mydisk1", "web1", "file")), "globs are anchored");
        assertFalse(s.matches(device("disk1", "db1", "file")));
        assertFalse(s.matches(device("disk1", "web1", "ram")));
    }

    @Test
    void otherCharactersAreLiteral() {
        Selector s = new Selector(List.of("a.b[1]+"), List.of(), List.of());
        assertTrue(s.matches(device("a.b[1]+", "v", "ram")));
        assertFalse(s.matches(device("aXb1", "v", "ram")));
    }

    @Test
    void theMismatchSaysWhichListExcludedTheDevice() {
        Selector s = new Selector(List.of("disk*"), List.of("web*"), List.of("io_uring"));
        assertNull(s.mismatch(device("disk0", "web1", "io_uring")));
        assertEquals("device id scratch matches none of devices = disk*", s.mismatch(device("scratch", "web1", "io_uring")));
        assertEquals("VM db1 matches none of vms = web*", s.mismatch(device("disk0", "db1", "io_uring")));
        assertEquals("driver ram matches none of drivers = io_uring", s.mismatch(device("disk0", "web1", "ram")));
    }
}
