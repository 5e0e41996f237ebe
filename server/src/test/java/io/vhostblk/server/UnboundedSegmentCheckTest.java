package io.vhostblk.server;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Build check: raw addresses live below the SPI only. No main class outside {@code linux},
 * {@code drivers} and {@code virtio} may make a segment over the whole address space or over a raw
 * address; request data is reached through {@code IoVector}.
 */
class UnboundedSegmentCheckTest {
    private static final List<String> ALLOWED_MODULES = List.of("linux", "drivers", "virtio");
    private static final List<String> RAW = List.of("reinterpret(Long.MAX_VALUE", "NULL.reinterpret", "MemorySegment.ofAddress(");

    @Test
    void noMainClassAboveTheDriversMakesARawOrUnboundedSegment() throws IOException {
        Path root = Path.of(System.getProperty("user.dir")).getParent(); // surefire runs in the module's folder
        assertTrue(Files.exists(root.resolve("pom.xml")) && Files.isDirectory(root.resolve("compat-lib")), "reactor root " + root);
        List<String> offenders = new ArrayList<>();
        int scanned = 0;
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                Path rel = root.relativize(f);
                String path = rel.toString().replace('\\', '/');
                if (!path.contains("/src/main/java/") || path.contains("/target/")) {
                    continue;
                }
                if (ALLOWED_MODULES.contains(rel.getName(0).toString())) {
                    continue;
                }
                scanned++;
                List<String> lines = Files.readAllLines(f);
                for (int i = 0; i < lines.size(); i++) {
                    for (String raw : RAW) {
                        if (lines.get(i).contains(raw)) {
                            offenders.add(path + ":" + (i + 1) + ": " + lines.get(i).trim());
                        }
                    }
                }
            }
        }
        assertTrue(scanned > 100, "only " + scanned + " main sources found under " + root);
        assertEquals(List.of(), offenders);
    }
}
