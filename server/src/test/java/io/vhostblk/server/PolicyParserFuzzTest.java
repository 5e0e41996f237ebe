package io.vhostblk.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzing with a fixed seed: policies assembled from valid lines, near-misses and junk parse or
 * fail with a {@link PolicyException} that names the file; nothing else is ever thrown.
 * {@code -Dvhostblk.fuzz.iterations=N} runs more, {@code -Dvhostblk.fuzz.seed=S} others.
 */
class PolicyParserFuzzTest {
    private static final int ITERATIONS = Integer.getInteger("vhostblk.fuzz.iterations", 20_000);
    private static final long SEED = Long.getLong("vhostblk.fuzz.seed", 20261130);
    private static final String DIGEST = "3f5a".repeat(16);
    private static final String[] KEYS = {"vm", "module-dir", "compat-lib-sha256", "chain", "jar", "sha256", "devices", "vms",
            "drivers", "enabled", "set.buckets", "set.", "set", "", " ", "chain ", "Jar", "sha256sum", "set.a.b", "x".repeat(300)};
    private static final String[] VALUES = {"web1", "", " ", "stats", "stats, zero-detect", "stats,,stats", "a.jar", DIGEST,
            DIGEST.toUpperCase(), DIGEST.substring(1), DIGEST + "0", "io_uring, file", "ram", "floppy", "true", "false", "TRUE",
            "data*", "*", "?", "[", "]", "=", "# comment", "a # b", "dir#1/a.jar", "/abs/a.jar", "../../etc/passwd", "\u0000",
            "\u00e9t\u00e9", "\ud83d\udca5", "-1", "99999999999999999999", "*".repeat(5000)};
    private static final String[] SECTIONS = {"[module stats]", "[module zero-detect]", "[module crypt]", "[module ]", "[module]",
            "[", "[]", "[module a b]", "[modul stats]", "[module stats", "[module stats]]", "[module *]", "[module \u00e9]",
            "[module " + "m".repeat(500) + "]", "  [module stats]  # c"};

    @TempDir
    Path dir;

    @Test
    void anyPolicyTextParsesOrFailsNamingTheFile() {
        SplittableRandom random = new SplittableRandom(SEED);
        int parsed = 0;
        for (int n = 0; n < ITERATIONS; n++) {
            List<String> lines = policy(random);
            try {
                PolicyParser.parse(dir.resolve("fuzz.policy"), "fuzz.policy", dir, lines);
                parsed++;
            } catch (PolicyException refused) {
                assertTrue(refused.getMessage().startsWith("fuzz.policy"), () -> "the error does not name the file: " + refused.getMessage());
            } catch (RuntimeException | StackOverflowError e) {
                throw new AssertionError("iteration " + n + " (seed " + SEED + "): the parser threw " + e + " on\n"
                        + String.join("\n", lines), e);
            }
        }
        System.out.println("[fuzz] policies: " + ITERATIONS + " iterations, " + parsed + " accepted (seed " + SEED + ")");
    }

    private static List<String> policy(SplittableRandom random) {
        List<String> lines = new ArrayList<>();
        int count = random.nextInt(14);
        for (int i = 0; i < count; i++) {
            switch (random.nextInt(6)) {
                case 0 -> lines.add(SECTIONS[random.nextInt(SECTIONS.length)]);
                case 1 -> lines.add("# " + VALUES[random.nextInt(VALUES.length)]);
                case 2 -> lines.add(junk(random));
                default -> lines.add(KEYS[random.nextInt(KEYS.length)] + (random.nextInt(10) == 0 ? " " : " = ")
                        + VALUES[random.nextInt(VALUES.length)]);
            }
        }
        return lines;
    }

    private static String junk(SplittableRandom random) {
        StringBuilder b = new StringBuilder();
        int len = random.nextInt(40);
        for (int i = 0; i < len; i++) {
            b.append((char) (random.nextBoolean() ? 32 + random.nextInt(95) : random.nextInt(0x3000)));
        }
        return b.toString();
    }
}
