package io.vhostblk.bench;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchOptionsTest {
    @Test
    void defaultsAreFioLike() throws Exception {
        BenchOptions o = BenchOptions.parse(List.of("--socket", "/tmp/s"));
        assertEquals(RwMode.RANDREAD, o.rw());
        assertEquals(4096, o.blockSize());
        assertEquals(32, o.iodepth());
        assertEquals(1, o.queues());
        assertEquals(Duration.ofSeconds(10), o.runtime());
        assertEquals(Duration.ofSeconds(2), o.ramp());
        assertEquals(256, o.ringSize());
        assertEquals(-1, o.pid());
        assertTrue(o.eventIdx());
        assertFalse(o.verify());
        assertEquals(Duration.ZERO, o.idle(), "disconnects as soon as the job ends");
    }

    @Test
    void parsesEveryOption() throws Exception {
        BenchOptions o = BenchOptions.parse(List.of("--socket", "/tmp/s", "--rw", "randrw", "--bs", "128k",
                "--iodepth", "100", "--queues", "2", "--runtime", "500ms", "--ramp", "0", "--size", "1g",
                "--rwmixread", "70", "--pid", "42", "--verify", "--poll", "--no-event-idx", "--seed", "9",
                "--stall-timeout", "3s", "--idle", "10s", "--json"));
        assertEquals(RwMode.RANDRW, o.rw());
        assertEquals(128 << 10, o.blockSize());
        assertEquals(100, o.iodepth());
        assertEquals(512, o.ringSize(), "300 descriptors need the next power of two");
        assertEquals(Duration.ofMillis(500), o.runtime());
        assertEquals(Duration.ZERO, o.ramp());
        assertEquals(1L << 30, o.size());
        assertEquals(70, o.readPercent());
        assertEquals(42, o.pid());
        assertTrue(o.verify() && o.busyPoll() && o.json());
        assertFalse(o.eventIdx());
        assertEquals(9, o.seed());
        assertEquals(Duration.ofSeconds(3), o.stallTimeout());
        assertEquals(Duration.ofSeconds(10), o.idle());
    }

    @Test
    void rejectsBadCommandLines() {
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of()));
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--bs", "1000")));
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--rw", "trim")));
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--runtime", "0")));
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--size", "6k")));
        assertThrows(BenchUsageException.class,
                () -> BenchOptions.parse(List.of("--socket", "s", "--iodepth", "100", "--ring-size", "256")));
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--ring-size", "300")));
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--queues")));
        BenchUsageException noPid = assertThrows(BenchUsageException.class,
                () -> BenchOptions.parse(List.of("--socket", "s", "--idle", "5s")));
        assertTrue(noPid.getMessage().contains("--pid"), noPid.getMessage());
        assertThrows(BenchUsageException.class, () -> BenchOptions.parse(List.of("--socket", "s", "--frobnicate")));
    }

    @Test
    void ramCoversRingsAndBuffersOfEveryQueue() throws Exception {
        BenchOptions o = BenchOptions.parse(List.of("--socket", "s", "--bs", "128k", "--iodepth", "64", "--queues", "4"));
        long ram = BenchJob.ramBytes(o);
        assertTrue(ram >= 4L * 64 * (128 << 10), "ram " + ram);
        assertEquals(0, ram % (2 << 20));
    }
}
