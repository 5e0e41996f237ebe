package io.vhostblk.server;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@code serve --control PATH}. */
class ServeControlOptionTest {
    private static final List<String> BASE = List.of("--socket", "/tmp/vb.sock", "--driver", "ram", "--size", "1M");

    private static ServeOptions parse(String... more) throws UsageException {
        List<String> args = new java.util.ArrayList<>(BASE);
        args.addAll(List.of(more));
        return ServeOptions.parse(args);
    }

    @Test
    void noControlSocketUnlessAsked() throws Exception {
        assertNull(parse().control());
        assertEquals(Path.of("/tmp/vb.ctl"), parse("--control", "/tmp/vb.ctl").control());
    }

    @Test
    void badControlPathsAreRefused() {
        assertEquals("--control needs a value", assertThrows(UsageException.class, () -> parse("--control")).getMessage());
        assertEquals("--control: must differ from --socket (/tmp/vb.sock)",
                assertThrows(UsageException.class, () -> parse("--control", "/tmp/../tmp/vb.sock")).getMessage());
        String tooLong = "/tmp/" + "c".repeat(110);
        assertEquals("--control: path '" + tooLong + "' is longer than a Unix socket path may be (107 bytes)",
                assertThrows(UsageException.class, () -> parse("--control", tooLong)).getMessage());
    }
}
