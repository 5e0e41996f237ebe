package io.vhostblk.server;

import io.vhostblk.drivers.DriverOptions;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ServeSubmitBatchOptionTest {
    private static ServeOptions parse(String... extra) throws UsageException {
        List<String> args = new ArrayList<>(List.of("--socket", "/tmp/s.sock", "--disk", "/tmp/d.img"));
        args.addAll(List.of(extra));
        return ServeOptions.parse(args);
    }

    @Test
    void defaultsToTheLargestBatchTheKernelDoesNotPlug() throws Exception {
        assertEquals(DriverOptions.DEFAULT_SUBMIT_BATCH, parse().submitBatch());
        assertEquals(2, DriverOptions.DEFAULT_SUBMIT_BATCH);
    }

    @Test
    void zeroMeansOncePerBatchAndOtherValuesAreKept() throws Exception {
        assertEquals(0, parse("--submit-batch", "0").submitBatch());
        assertEquals(16, parse("--submit-batch", "16").submitBatch());
    }

    @Test
    void outOfRangeValuesAreNamed() {
        assertEquals("--submit-batch: -1 is outside 0..32768",
                assertThrows(UsageException.class, () -> parse("--submit-batch", "-1")).getMessage());
        assertEquals("--submit-batch: 40000 is outside 0..32768",
                assertThrows(UsageException.class, () -> parse("--submit-batch", "40000")).getMessage());
    }
}
