package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A fresh directory under /tmp for a test's Unix sockets (sun_path holds 108 bytes, too few for a
 * path under a deep checkout's target/), deleted with everything in it on close.
 */
final class SocketDir implements AutoCloseable {
    private final Path dir;

    private SocketDir(Path dir) {
        this.dir = dir;
    }

    /** Creates {@code /tmp/PREFIXrandom}. */
    static SocketDir create(String prefix) throws IOException {
        return new SocketDir(Files.createTempDirectory(Path.of("/tmp"), prefix));
    }

    /** {@code name} inside the directory. */
    Path resolve(String name) {
        return dir.resolve(name);
    }

    Path path() {
        return dir;
    }

    @Override
    public void close() throws IOException {
        TestDirs.deleteRecursively(dir);
    }
}
