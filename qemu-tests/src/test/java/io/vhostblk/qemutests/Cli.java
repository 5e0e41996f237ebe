package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.testsupport.ServerJvm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A {@code vhost-blk} subcommand run in this JVM (the CLI's own code) or in a JVM of its own, its output captured. */
final class Cli {
    /** A subcommand's entry point: arguments, standard output and error in, exit status out. */
    @FunctionalInterface
    interface Command {
        int run(List<String> args, PrintStream out, PrintStream err);
    }

    /** How one run ended. */
    record Output(int status, String out, String err) {
        /** Standard output followed by standard error. */
        String text() {
            return out + err;
        }
    }

    private Cli() {
    }

    /** Runs {@code command} with {@code args}. */
    static Output run(Command command, List<String> args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = command.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Output(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /**
     * Runs {@code vhost-blk ARGS} in a JVM of its own on {@code classPath} (one without the module
     * jars, which must then come from their jars), bounded by {@code timeout}.
     */
    static Output process(String classPath, Duration timeout, List<String> args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(ModuleJars.java(), ServerJvm.OPTIONS, "-cp", classPath,
                VhostBlkServer.MAIN_CLASS));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            fail("vhost-blk " + String.join(" ", args) + " did not finish within " + timeout.toSeconds() + " s");
        }
        return new Output(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err, StandardCharsets.UTF_8));
    }

    /**
     * Runs {@code vhost-blk NAME ARGS}; a non-zero exit is noted in {@code problems}. Returns what it
     * printed on both streams.
     */
    static String run(Problems problems, String name, Command command, String... args) {
        Output o = run(command, List.of(args));
        if (o.status() != 0) {
            problems.add("vhost-blk " + name + " " + String.join(" ", args) + " exited " + o.status() + ":\n" + o.text());
        }
        return o.text();
    }
}
