package io.vhostblk.testsupport;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A throwaway single-node Ceph cluster for tests: one monitor, one manager and one BlueStore OSD on
 * a sparse file, as root, bound to 127.0.0.1, in a directory of its own, with cephx and a pool for
 * RBD images. Start once per test class ({@code ceph-test-cluster.sh} does the set-up, bounded in
 * time; its failure message carries the daemons' logs); {@link #close} stops the daemons by PID.
 * Needs Debian's ceph-mon, ceph-mgr, ceph-osd and ceph-common (bin/run-tests installs them).
 */
public final class CephCluster implements AutoCloseable {
    /** The pool made for RBD images. */
    public static final String POOL = "rbd";
    private static final long START_SECONDS = 180;
    private static final long COMMAND_SECONDS = 120;

    private final Path dir;
    private final List<Long> pids;

    private CephCluster(Path dir, List<Long> pids) {
        this.dir = dir;
        this.pids = pids;
    }

    /** Starts a cluster in a new directory under {@code parent}; throws with the daemons' logs on failure. */
    public static CephCluster start(Path parent) throws IOException, InterruptedException {
        Files.createDirectories(parent);
        Path dir = Files.createTempDirectory(parent.toAbsolutePath(), "ceph");
        Path script = dir.resolve("ceph-test-cluster.sh");
        try (InputStream in = CephCluster.class.getResourceAsStream("ceph-test-cluster.sh")) {
            Files.copy(in, script);
        }
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        Path out = dir.resolve("start.out");
        Process p = new ProcessBuilder("bash", script.toString(), dir.resolve("c").toString(), Integer.toString(port), POOL)
                .redirectErrorStream(true).redirectOutput(out.toFile()).start();
        boolean exited = p.waitFor(START_SECONDS, TimeUnit.SECONDS);
        if (!exited) {
            p.destroyForcibly().waitFor();
        }
        CephCluster cluster = new CephCluster(dir, daemonPids(dir.resolve("c/run")));
        if (!exited || p.exitValue() != 0) {
            String logs = cluster.logs();
            cluster.close();
            throw new IOException("the test Ceph cluster did not start " + (exited ? "(exit " + p.exitValue() + ")"
                    : "within " + START_SECONDS + " s") + "; output and logs:\n" + Files.readString(out) + logs);
        }
        return cluster;
    }

    private static List<Long> daemonPids(Path run) throws IOException {
        List<Long> pids = new ArrayList<>();
        if (!Files.isDirectory(run)) {
            return pids;
        }
        try (Stream<Path> files = Files.list(run)) {
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".pid")).sorted().toList()) {
                String text = Files.readString(f).strip();
                if (!text.isEmpty()) {
                    pids.add(Long.parseLong(text));
                }
            }
        }
        return pids;
    }

    /** The cluster's ceph.conf (monitor address, keyring of client.admin). */
    public Path conf() {
        return dir.resolve("c/ceph.conf");
    }

    /** client.admin's keyring. */
    public Path keyring() {
        return dir.resolve("c/client.admin.keyring");
    }

    /** The PID of a daemon ({@code "osd.0"}, {@code "mon.a"}, {@code "mgr.x"}), for tests that pause it. */
    public long pid(String daemon) throws IOException {
        return Long.parseLong(Files.readString(dir.resolve("c/run/" + daemon + ".pid")).strip());
    }

    /**
     * Stops ({@code SIGSTOP}) or resumes ({@code SIGCONT}) a daemon: a cluster that stops answering.
     * A stop returns only once every thread of the daemon is stopped: {@code kill} returns when the
     * signal is queued, and the daemon's other threads keep running (and answering) until the
     * kernel has had each of them scheduled to take part in the stop.
     */
    public void signal(String daemon, boolean stop) throws IOException, InterruptedException {
        long pid = pid(daemon);
        Process p = new ProcessBuilder("kill", stop ? "-STOP" : "-CONT", Long.toString(pid)).inheritIO().start();
        if (!p.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("cannot " + (stop ? "stop " : "resume ") + daemon);
        }
        if (stop) {
            awaitStopped(daemon, pid);
        }
    }

    private static void awaitStopped(String daemon, long pid) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(COMMAND_SECONDS);
        List<String> running = runningThreads(pid);
        while (!running.isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new IOException(daemon + " (pid " + pid + ") was sent SIGSTOP but threads " + running
                        + " are still not stopped after " + COMMAND_SECONDS + " s");
            }
            Thread.sleep(10);
            running = runningThreads(pid);
        }
    }

    /** The threads of {@code pid} not in the stopped state, as {@code tid:state} (from /proc). */
    private static List<String> runningThreads(long pid) throws IOException {
        List<String> running = new ArrayList<>();
        try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : tasks.toList()) {
                String stat;
                try {
                    stat = Files.readString(task.resolve("stat"), StandardCharsets.ISO_8859_1);
                } catch (NoSuchFileException gone) {
                    continue; // the thread exited while we looked
                }
                // "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
                char state = stat.charAt(stat.lastIndexOf(')') + 2);
                if (state != 'T') {
                    running.add(task.getFileName() + ":" + state);
                }
            }
        }
        return running;
    }

    /** Creates an image of {@code mib} MiB (layering only: no exclusive lock, so queues do not trade it). */
    public void createImage(String image, int mib) throws IOException, InterruptedException {
        rbd("create", "--size", mib + "M", "--image-feature", "layering", POOL + "/" + image);
    }

    /** The whole image (or {@code image@snap}) as the cluster has it. */
    public byte[] export(String image) throws IOException, InterruptedException {
        Path file = dir.resolve("export-" + System.nanoTime());
        try {
            rbd("export", "--no-progress", POOL + "/" + image, file.toString());
            return Files.readAllBytes(file);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** Runs the {@code rbd} CLI against this cluster; returns its output, throws with it on failure. */
    public String rbd(String... args) throws IOException, InterruptedException {
        return command("rbd", args);
    }

    /** Runs the {@code ceph} CLI against this cluster. */
    public String ceph(String... args) throws IOException, InterruptedException {
        return command("ceph", args);
    }

    private String command(String tool, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(tool, "-c", conf().toString()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(dir, tool, ".out");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(COMMAND_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                throw new IOException(String.join(" ", cmd) + " did not finish within " + COMMAND_SECONDS + " s:\n" + Files.readString(out));
            }
            String text = Files.readString(out);
            if (p.exitValue() != 0) {
                throw new IOException(String.join(" ", cmd) + " failed (exit " + p.exitValue() + "):\n" + text);
            }
            return text;
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** The last lines of every daemon log, for a failure message. */
    public String logs() {
        StringBuilder b = new StringBuilder();
        Path logDir = dir.resolve("c/log");
        if (!Files.isDirectory(logDir)) {
            return "(no logs)";
        }
        try (Stream<Path> files = Files.list(logDir)) {
            for (Path f : files.sorted().toList()) {
                List<String> lines = Files.readAllLines(f, StandardCharsets.ISO_8859_1);
                b.append("==> ").append(f.getFileName()).append(" <==\n");
                lines.subList(Math.max(0, lines.size() - 40), lines.size()).forEach(l -> b.append(l).append('\n'));
            }
        } catch (IOException e) {
            b.append("(cannot read logs: ").append(e.getMessage()).append(")\n");
        }
        return b.toString();
    }

    /** Stops every daemon by PID (SIGTERM, then SIGKILL after 20 s) and removes the directory. */
    @Override
    public void close() {
        List<ProcessHandle> handles = new ArrayList<>();
        for (long pid : pids) {
            Optional<ProcessHandle> h = ProcessHandle.of(pid);
            h.ifPresent(ProcessHandle::destroy);
            h.ifPresent(handles::add);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        for (ProcessHandle h : handles) {
            while (h.isAlive() && System.nanoTime() < deadline) {
                try {
                    Thread.sleep(50);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            if (h.isAlive()) {
                h.destroyForcibly();
            }
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the test cluster's directory " + dir, e);
        }
    }
}
