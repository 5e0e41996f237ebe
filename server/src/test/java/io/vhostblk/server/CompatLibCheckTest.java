package io.vhostblk.server;

import io.vhostblk.hooks.CodeDigest;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class CompatLibCheckTest {
    private static final String PIN = "aa".repeat(32);
    private static final Policy PINNED = new Policy(Path.of("web1.policy"), null, null, PIN, List.of());

    @Test
    void noPinNoCheck() {
        assertDoesNotThrow(() -> CompatLibCheck.check(Policy.none(), new CodeDigest(Path.of("/x/classes"), null)));
    }

    @Test
    void aMatchingJarPasses() {
        assertDoesNotThrow(() -> CompatLibCheck.check(PINNED, new CodeDigest(Path.of("/opt/vhost-blk.jar"), PIN)));
    }

    @Test
    void aChangedCompatLibIsRefused() {
        StartupException e = assertThrows(StartupException.class,
                () -> CompatLibCheck.check(PINNED, new CodeDigest(Path.of("/opt/vhost-blk.jar"), "bb".repeat(32))));
        assertEquals("web1.policy: compat-lib-sha256: the policy pins " + PIN + ", but /opt/vhost-blk.jar has " + "bb".repeat(32)
                + "; the compat-lib changed, refusing to start", e.getMessage());
    }

    @Test
    void aPinCannotBeCheckedAgainstClassesDirectories() {
        StartupException e = assertThrows(StartupException.class,
                () -> CompatLibCheck.check(PINNED, new CodeDigest(Path.of("/src/compat-lib/target/classes"), null)));
        assertEquals("web1.policy: compat-lib-sha256: the policy pins the compat-lib to " + PIN
                + ", but it runs from the classes directory /src/compat-lib/target/classes (not a jar: no digest to check); refusing to start",
                e.getMessage());
    }

    @Test
    void theTestsRunTheCompatLibFromAJarOrClassesAndSaySo() throws Exception {
        CodeDigest d = CompatLibCheck.verify(Policy.none());
        // In the reactor compat-lib is a jar (install) or target/classes (test phase): either is reported.
        assertEquals(d.fromJar(), d.describe().startsWith("jar "));
    }
}
