package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;

/**
 * An exclusive lock on the guest tests' work directory: two builds of one work tree would otherwise
 * recreate each other's images and logs mid-run (and compete for the CPUs that TCG needs).
 */
final class RunLock implements AutoCloseable {
    private final FileChannel channel;
    private final FileLock lock;

    private RunLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** Waits (bounded) until no other process holds {@code file}'s lock, then holds it. */
    static RunLock acquire(Path file, Duration timeout) throws IOException, InterruptedException {
        Files.createDirectories(file.getParent());
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            while (true) {
                FileLock lock = channel.tryLock();
                if (lock != null) {
                    return new RunLock(channel, lock);
                }
                if (System.nanoTime() > deadline) {
                    fail("another run of the guest tests in this work tree still holds " + file + " after "
                            + timeout.toMinutes() + " min");
                }
                Thread.sleep(1000);
            }
        } catch (IOException | RuntimeException | Error | InterruptedException e) {
            channel.close();
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }
}
