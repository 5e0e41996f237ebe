package io.vhostblk.hooks;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CodeDigestTest {
    @Test
    void codeDigestTellsAClassesDirectoryFromAJar() throws Exception {
        CodeDigest here = CodeDigest.of(ModuleLoader.class);
        assertTrue(Files.isDirectory(here.location()), "the build runs hooks from target/classes");
        assertTrue(!here.fromJar() && here.describe().contains("classes directory"), here.describe());
        CodeDigest junit = CodeDigest.of(Test.class);
        assertTrue(junit.fromJar());
        assertEquals(Sha256.of(Files.readAllBytes(junit.location())), junit.sha256());
        assertEquals("jar " + junit.location() + " sha256 " + junit.sha256(), junit.describe());
    }
}
