package io.vhostblk.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzing with a fixed seed: host configurations ({@code serve --config}) assembled from valid
 * lines, near-misses and junk parse or fail with a {@link HostConfig.ConfigException} that names
 * the file; nothing else is ever thrown. {@code -Dvhostblk.fuzz.iterations=N} runs more,
 * {@code -Dvhostblk.fuzz.seed=S} others.
 */
class HostConfigFuzzTest {
    private static final int ITERATIONS = Integer.getInteger("vhostblk.fuzz.iterations", 20_000);
    private static final long SEED = Long.getLong("vhostblk.fuzz.seed", 20261130);
    private static final String[] KEYS = {"control", "metrics", "vm", "socket", "disk", "size", "queues", "queue-size", "driver",
            "read-only", "writeback", "direct", "read-zeroes", "kick-on-ring", "poll-us", "submit-batch", "policy", "module-dir", "inject", "id",
            "no-writeback", "config", "", "x".repeat(200)};
    private static final String[] VALUES = {"web1", "/run/vb/a.sock", "a.sock", "../../a.sock", "/x/" + "s".repeat(200) + ".sock",
            "disk.img", "1G", "0", "-1", "1.5G", "9999999999T", "8E", "2", "64", "65", "32768", "65536", "io_uring", "ram", "null",
            "floppy", "true", "false", "yes", "9100", "127.0.0.1:9100", "[::1]:9100", ":9100", "host:99999", "eio=0-4096",
            "latency=5xs", "power-cut,reorder=1", "", " ", "=", "#", "\u0000", "\u00e9", "\ud83d\udca5"};
    private static final String[] SECTIONS = {"[device web1]", "[device web2]", "[device a.b-c_d]", "[device ]", "[device]", "[",
            "[]", "[device a b]", "[devices web1]", "[device web1", "[device -x]", "[device \u00e9]", "[device " + "d".repeat(300) + "]"};

    @TempDir
    Path dir;

    @Test
    void anyHostConfigurationParsesOrFailsNamingTheFile() {
        SplittableRandom random = new SplittableRandom(SEED);
        Path file = dir.resolve("host.conf");
        int parsed = 0;
        for (int n = 0; n < ITERATIONS; n++) {
            List<String> lines = config(random);
            try {
                HostConfig.parse(file, lines);
                parsed++;
            } catch (HostConfig.ConfigException refused) {
                assertTrue(refused.getMessage().startsWith(file.toString()), () -> "the error does not name the file: " + refused.getMessage());
            } catch (RuntimeException | StackOverflowError e) {
                throw new AssertionError("iteration " + n + " (seed " + SEED + "): the parser threw " + e + " on\n"
                        + String.join("\n", lines), e);
            }
        }
        System.out.println("[fuzz] host configurations: " + ITERATIONS + " iterations, " + parsed + " accepted (seed " + SEED + ")");
    }

    private static List<String> config(SplittableRandom random) {
        List<String> lines = new ArrayList<>();
        if (random.nextInt(3) == 0) {
            // A valid device first, so the random lines also meet a configuration that gets that far.
            lines.addAll(List.of("[device web1]", "socket = a.sock", "disk = a.img", "size = 1M"));
        }
        int count = random.nextInt(16);
        for (int i = 0; i < count; i++) {
            switch (random.nextInt(7)) {
                case 0 -> lines.add(SECTIONS[random.nextInt(SECTIONS.length)]);
                case 1 -> lines.add("# " + VALUES[random.nextInt(VALUES.length)]);
                case 2 -> {
                    StringBuilder b = new StringBuilder();
                    for (int c = random.nextInt(30); c > 0; c--) {
                        b.append((char) (random.nextBoolean() ? 32 + random.nextInt(95) : random.nextInt(0x3000)));
                    }
                    lines.add(b.toString());
                }
                default -> lines.add(KEYS[random.nextInt(KEYS.length)] + (random.nextInt(10) == 0 ? " " : " = ")
                        + VALUES[random.nextInt(VALUES.length)]);
            }
        }
        return lines;
    }
}
