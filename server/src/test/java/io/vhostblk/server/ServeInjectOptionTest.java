package io.vhostblk.server;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code serve --inject SPEC}. */
class ServeInjectOptionTest {
    private static final List<String> BASE = List.of("--socket", "/tmp/vb.sock", "--driver", "ram", "--size", "1M");

    private static ServeOptions parse(String... more) throws UsageException {
        List<String> args = new ArrayList<>(BASE);
        args.addAll(List.of(more));
        return ServeOptions.parse(args);
    }

    @Test
    void noFaultsUnlessAsked() throws Exception {
        assertNull(parse().inject());
        var spec = parse("--inject", "eio=0-4096,latency=1ms").inject();
        assertEquals(1_000_000, spec.latencyNanos());
        assertEquals(1, spec.eioRanges().size());
    }

    @Test
    void aBadSpecNamesTheOptionAndTheTerm() {
        assertEquals("--inject needs a value", assertThrows(UsageException.class, () -> parse("--inject")).getMessage());
        String msg = assertThrows(UsageException.class, () -> parse("--inject", "eio=0-4096,latency=3h")).getMessage();
        assertTrue(msg.startsWith("--inject: 'latency=3h': unit must be"), msg);
    }
}
