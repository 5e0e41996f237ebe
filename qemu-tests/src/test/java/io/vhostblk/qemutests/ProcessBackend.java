package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A back-end run as a child process with its output in a log file; ready once its socket exists,
 * stopped with SIGTERM and, failing that, killed.
 */
abstract class ProcessBackend implements StorageBackend {
    static final Duration READY_TIMEOUT = Duration.ofSeconds(20);
    static final Duration STOP_TIMEOUT = Duration.ofSeconds(15);

    private final String name;
    private final ExportSpec spec;
    private final Process process;
    private final String readyLine;

    /** Starts {@code command} and waits until it listens on the spec's socket; fails with its log otherwise. */
    protected ProcessBackend(String name, ExportSpec spec, List<String> command) {
        this(name, spec, command, null);
    }

    /**
     * Like {@link #ProcessBackend(String, ExportSpec, List)}, but ready only once the log also has
     * {@code readyLine}: the socket file appears at bind(), a moment before listen(), and a client
     * connecting in between is refused.
     */
    protected ProcessBackend(String name, ExportSpec spec, List<String> command, String readyLine) {
        this.name = name;
        this.spec = spec;
        this.readyLine = readyLine;
        try {
            Files.writeString(spec.log(), "$ " + String.join(" ", command) + "\n");
            this.process = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(spec.log().toFile()))
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
        } catch (IOException e) {
            throw new AssertionError("cannot start " + name + ": " + String.join(" ", command), e);
        }
        try {
            awaitSocket();
        } catch (RuntimeException | Error | InterruptedException e) {
            close();
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            throw e instanceof Error err ? err : new AssertionError(e);
        }
    }

    private void awaitSocket() throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!Files.exists(spec.socket()) || (readyLine != null && !Logs.tail(spec.log(), 200).contains(readyLine))) {
            if (!process.isAlive()) {
                fail(name + " exited with status " + process.exitValue() + " before creating its socket "
                        + spec.socket() + "\n--- " + name + " log (" + spec.log() + ") ---\n" + logTail(40));
            }
            if (System.nanoTime() > deadline) {
                fail(name + " did not create its socket " + spec.socket() + " within " + READY_TIMEOUT.toSeconds()
                        + " s\n--- " + name + " log (" + spec.log() + ") ---\n" + logTail(40));
            }
            Thread.sleep(50);
        }
    }

    /** Waits (bounded by {@link #READY_TIMEOUT}) until {@code file}, such as a further socket of the back-end, exists. */
    void awaitFile(Path file) throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!Files.exists(file)) {
            if (!process.isAlive()) {
                fail(name + " exited with status " + process.exitValue() + " before creating " + file + "\n--- "
                        + name + " log (" + spec.log() + ") ---\n" + logTail(40));
            }
            if (System.nanoTime() > deadline) {
                fail(file + " did not appear within " + READY_TIMEOUT.toSeconds() + " s\n--- " + name + " log ("
                        + spec.log() + ") ---\n" + logTail(40));
            }
            Thread.sleep(50);
        }
    }

    /** The back-end's process id (for CPU accounting by {@code vhost-blk bench --pid}). */
    long pid() {
        return process.pid();
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public Path socket() {
        return spec.socket();
    }

    @Override
    public Exit stop() throws InterruptedException {
        if (!process.isAlive()) {
            return new Exit(process.exitValue(), true, false);
        }
        process.destroy(); // SIGTERM
        if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            close();
            return new Exit(-1, false, true);
        }
        return new Exit(process.exitValue(), false, false);
    }

    @Override
    public String logTail(int lines) {
        return Logs.tail(spec.log(), lines);
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
