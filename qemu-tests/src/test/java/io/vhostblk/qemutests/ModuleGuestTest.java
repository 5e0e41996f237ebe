package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.server.ControlClient;
import io.vhostblk.server.Json;
import io.vhostblk.testsupport.ServerJvm;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A guest writes and reads through the zero-detect and stats modules, loaded from their jars by a
 * policy, while the test disables, re-enables and reorders them over the control socket: nothing the
 * guest wrote is lost (its read-back and the host image match the plan), and at the end the modules'
 * counters and reports, read with {@code vhost-blk ctl}, show the I/O.
 */
class ModuleGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(240);
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long DISK = 64 * MIB;
    private static final String DEVICE = "disk.img";
    /** The policy's order; enabling without a position restores it. */
    private static final List<String> CHAIN = List.of("zero-detect", "stats");
    /** The host stops toggling when the guest announces this flushed write. */
    private static final String SETTLE = "settle";
    /** Enable periods in which a module must have seen guest requests before being disabled again. */
    private static final int MIN_BUSY_PERIODS = 3;
    private static final long TOGGLE_PAUSE_MILLIS = 15;

    static final GuestPlan PLAN = plan();

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    private static GuestPlan plan() {
        GuestPlan p = GuestPlan.writable("modules", DISK, 1, 1).writeBack("write-back-cache");
        // Phase 1, while the host toggles the modules: thousands of small requests, then zeros over
        // written data (zero-detect turns those WRITEs into WRITE_ZEROES), then larger requests.
        p.write("toggle-4k", 4096, 0, 8 * MIB, 0)
                .write("toggle-4k-more", 4096, 8 * MIB, 7 * MIB, 100_000)
                .writeZeros("zeros-64k", (int) (64 * KIB), 2 * MIB, 2 * MIB)
                .write("toggle-64k", (int) (64 * KIB), 20 * MIB + 512, 6 * MIB, MIB + 5)
                .writeZeros("zeros-4k", 4096, 22 * MIB + 512, 256 * KIB)
                .read("toggle-4k-read-head", (int) (64 * KIB), 0, 2 * MIB, 0)
                .readZeros("zeros-64k-read", 4096, 2 * MIB, 2 * MIB)
                .read("toggle-4k-read-tail", 4096, 4 * MIB, 4 * MIB, 4 * MIB)
                .read("toggle-4k-more-read", (int) (128 * KIB), 8 * MIB, 7 * MIB, 100_000)
                .read("toggle-64k-read-head", 4096, 20 * MIB + 512, 2 * MIB, MIB + 5)
                .readZeros("zeros-4k-read", 512, 22 * MIB + 512, 256 * KIB)
                .read("toggle-64k-read-tail", (int) (64 * KIB), 22 * MIB + 512 + 256 * KIB, 4 * MIB - 256 * KIB,
                        3 * MIB + 5 + 256 * KIB);
        // The host stops toggling here; both modules are back in the policy's order.
        p.flushedWrite(SETTLE, (int) (64 * KIB), 32 * MIB, MIB, 2 * MIB + 11);
        // Phase 2: I/O the final instances must count.
        p.write("after-4k", 4096, 40 * MIB, MIB, 3 * MIB)
                .writeZeros("after-zeros", 4096, 40 * MIB + 256 * KIB, 64 * KIB)
                .read("after-read-head", 4096, 40 * MIB, 256 * KIB, 3 * MIB)
                .readZeros("after-zeros-read", 4096, 40 * MIB + 256 * KIB, 64 * KIB)
                .read("after-read-tail", 4096, 40 * MIB + 320 * KIB, MIB - 320 * KIB, 3 * MIB + 320 * KIB)
                .read("settle-read", (int) (64 * KIB), 32 * MIB, MIB, 2 * MIB + 11);
        return p.fsync("final-fsync");
    }

    @BeforeAll
    static void prepareGuest() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        // Its own cache directory: Initramfs.build deletes other archives in the one it is given.
        initramfs = Initramfs.build(TARGET.resolve("guest-modules"), kernel, List.of(PLAN));
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    @Test
    void guestDataSurvivesModulesTogglingUnderIoAndCtlShowsTheirCounters() throws Exception {
        Path runDir = TARGET.resolve("qemu-runs").resolve(PLAN.name() + "-vhost_blk");
        TestDirs.deleteRecursively(runDir);
        Files.createDirectories(runDir);
        Path image = runDir.resolve(DEVICE);
        DiskImage.create(image, PLAN);
        Path policy = writePolicy(runDir);

        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbm-");
        try {
            ExportSpec spec = new ExportSpec(image, DISK, PLAN.queues(), false, socketDir.resolve("blk.sock"),
                    runDir.resolve("backend.log"));
            Path control = socketDir.resolve("ctl.sock");
            try (ModuleServer server = new ModuleServer(spec, policy, control)) {
                awaitFile(control, server);
                List<String> chain = chainOf(ctl(control, "chain", DEVICE), problems);
                if (!CHAIN.equals(chain)) {
                    problems.add("at start the chain is " + chain + ", the policy says " + CHAIN);
                }
                Toggler toggler = new Toggler(control, problems);
                Thread thread = Thread.ofPlatform().name("module-toggler").daemon().start(toggler);
                GuestRun run;
                try {
                    run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, PLAN, spec.socket(), runDir, GUEST_TIMEOUT),
                            check -> settle(check, toggler, thread, control, image));
                } finally {
                    toggler.stop.set(true);
                    thread.join(TimeUnit.SECONDS.toMillis(30));
                }
                run.problems(PLAN.checks()).forEach(p -> problems.add("guest: " + p));
                run.hostProblems().forEach(p -> problems.add("host check at the guest's SYNCED " + p));
                toggler.busyPeriods.forEach((module, n) -> {
                    if (n < MIN_BUSY_PERIODS) {
                        problems.add("module " + module + " saw guest requests in only " + n + " of its enable periods ("
                                + toggler.cycles + " toggle cycles): the toggling did not overlap the guest's I/O");
                    }
                });
                checkCtlAfterGuest(control, problems);
                String imageAfterGuest = DiskImage.compare(image, PLAN.expectedImage(), PLAN);
                if (imageAfterGuest != null) {
                    problems.add("image file after the guest powered off: " + imageAfterGuest);
                }
                StorageBackend.Exit exit = server.stop();
                if (!exit.clean()) {
                    problems.add("vhost-blk must exit with status 0 within " + ProcessBackend.STOP_TIMEOUT.toSeconds()
                            + " s of SIGTERM, but it " + exit);
                }
                if (Files.exists(control)) {
                    problems.add("the control socket " + control + " is still there after the server stopped");
                }
                System.out.println("ModuleGuestTest: " + toggler.cycles + " toggle cycles; enable periods with guest I/O "
                        + toggler.busyPeriods);
                if (!problems.isEmpty()) {
                    fail("plan '" + PLAN.name() + "' with modules " + CHAIN + " toggled " + toggler.cycles + " times (busy "
                            + toggler.busyPeriods + "): " + problems.size() + " problem(s)\n  - "
                            + String.join("\n  - ", problems) + "\n" + run.serialTail(30) + "\n--- vhost-blk log ("
                            + spec.log() + ") ---\n" + server.logTail(40));
                }
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
    }

    /**
     * Disables, re-enables and reorders the modules over one control connection until stopped; a cycle
     * always ends with the chain as the policy has it. Before each disable it reads the module's
     * counters: requests seen in that enable period show the toggle happened under guest I/O.
     */
    private static final class Toggler implements Runnable {
        final AtomicBoolean stop = new AtomicBoolean();
        final Map<String, Integer> busyPeriods = new java.util.concurrent.ConcurrentHashMap<>(
                Map.of("stats", 0, "zero-detect", 0));
        volatile int cycles;
        private final Path control;
        private final List<String> problems;

        Toggler(Path control, List<String> problems) {
            this.control = control;
            this.problems = problems;
        }

        @Override
        public void run() {
            try (ControlClient c = ControlClient.connect(control)) {
                while (!stop.get()) {
                    for (String module : CHAIN) {
                        long seen = seen(c, module);
                        if (seen > 0) {
                            busyPeriods.merge(module, 1, Integer::sum);
                        }
                        command(c, "disable " + DEVICE + " " + module);
                        pause();
                        command(c, "enable " + DEVICE + " " + module);
                        pause();
                    }
                    command(c, "move " + DEVICE + " stats 0");
                    pause();
                    command(c, "move " + DEVICE + " stats 1");
                    cycles++;
                    pause();
                }
            } catch (IOException | RuntimeException | Json.ParseException e) {
                problems.add("toggling over the control socket failed after " + cycles + " cycles: " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private long seen(ControlClient c, String module) throws IOException, Json.ParseException {
            Map<?, ?> reply = command(c, "counters " + DEVICE + " " + module);
            return (Long) ((Map<?, ?>) reply.get("counters")).get("seen");
        }

        private static Map<?, ?> command(ControlClient c, String line) throws IOException, Json.ParseException {
            String reply = c.request(line);
            Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
            if (!Boolean.TRUE.equals(m.get("ok"))) {
                throw new IllegalStateException("'" + line + "' was refused: " + reply);
            }
            return m;
        }

        private static void pause() throws InterruptedException {
            Thread.sleep(TOGGLE_PAUSE_MILLIS);
        }
    }

    /** At the guest's SYNCED: stop toggling (the chain is whole again), then check the flushed data is in the image. */
    private static String settle(String check, Toggler toggler, Thread thread, Path control, Path image) {
        if (!check.equals(SETTLE)) {
            return "unexpected SYNCED " + check;
        }
        toggler.stop.set(true);
        try {
            thread.join(TimeUnit.SECONDS.toMillis(20));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted while stopping the toggler";
        }
        if (thread.isAlive()) {
            return "the toggler did not stop within 20 s";
        }
        try (ControlClient c = ControlClient.connect(control)) {
            Map<?, ?> reply = (Map<?, ?>) Json.parse(c.request("chain " + DEVICE));
            List<String> names = ((List<?>) reply.get("chain")).stream().map(e -> (String) ((Map<?, ?>) e).get("name")).toList();
            if (!names.equals(CHAIN)) {
                return "after toggling the chain is " + names + ", expected " + CHAIN;
            }
            return DiskImage.compareRange(image, PLAN.flushedWrite(check));
        } catch (IOException | Json.ParseException | RuntimeException e) {
            return "control socket after toggling: " + e;
        }
    }

    /** {@code vhost-blk ctl} after the guest is gone: the final instances counted its phase-2 I/O. */
    private static void checkCtlAfterGuest(Path control, List<String> problems) throws Exception {
        Ctl chain = ctl(control, "chain", DEVICE);
        if (!CHAIN.equals(chainOf(chain, problems))) {
            problems.add("ctl chain after the guest: " + chain);
        }
        Ctl counters = ctl(control, "counters", DEVICE, "stats");
        Map<?, ?> c = counters.json(problems);
        if (c != null) {
            Map<?, ?> m = (Map<?, ?>) c.get("counters");
            if (!(m.get("seen") instanceof Long seen && seen > 0) || !(m.get("bytes") instanceof Long bytes && bytes > 0)
                    || !m.get("seen").equals(m.get("passed"))) {
                problems.add("stats counters must show requests seen and passed on, with bytes: " + counters.out);
            }
        }
        Ctl stats = ctl(control, "report", DEVICE, "stats");
        Map<?, ?> s = stats.json(problems);
        if (s != null) {
            Map<?, ?> report = (Map<?, ?>) s.get("report");
            for (String op : List.of("read", "write", "flush")) {
                Object count = report.get(op) instanceof Map<?, ?> o ? o.get("count") : null;
                if (!(count instanceof Long n && n > 0)) {
                    problems.add("stats report: no " + op + " counted after the last enable: " + stats.out);
                }
            }
        }
        Ctl zero = ctl(control, "report", DEVICE, "zero-detect");
        Map<?, ?> z = zero.json(problems);
        if (z != null) {
            Map<?, ?> report = (Map<?, ?>) z.get("report");
            // after-zeros: 64 KiB of zeros in 4 KiB writes, each turned into a WRITE_ZEROES.
            if (!(report.get("zero-writes") instanceof Long n && n >= 16)) {
                problems.add("zero-detect report: the 16 zero writes after the last enable are not all counted: " + zero.out);
            }
        }
        Ctl refused = ctl(control, "disable", DEVICE, "no-such-module");
        if (refused.status != 1 || !refused.err.contains("no-such-module")) {
            problems.add("ctl disable of an unknown module must exit 1 naming it: " + refused);
        }
    }

    private static List<String> chainOf(Ctl chain, List<String> problems) {
        Map<?, ?> m = chain.json(problems);
        if (m == null) {
            return List.of();
        }
        return ((List<?>) m.get("chain")).stream().map(e -> (String) ((Map<?, ?>) e).get("name")).toList();
    }

    /** One run of {@code vhost-blk ctl}: exit status, standard output and error. */
    private record Ctl(List<String> args, int status, String out, String err) {
        /** The printed reply, or null (with a problem noted) when ctl failed. */
        Map<?, ?> json(List<String> problems) {
            if (status != 0) {
                problems.add("vhost-blk ctl " + String.join(" ", args) + " exited " + status + ": " + err);
                return null;
            }
            try {
                return (Map<?, ?>) Json.parse(out);
            } catch (Json.ParseException e) {
                problems.add("vhost-blk ctl " + String.join(" ", args) + " printed no JSON (" + e.getMessage() + "): " + out);
                return null;
            }
        }
    }

    private static Ctl ctl(Path control, String... command) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(List.of("--control", control.toString()));
        args.addAll(List.of(command));
        List<String> cmd = new ArrayList<>(List.of(java(), ServerJvm.OPTIONS, "-cp", serverClassPath(),
                VhostBlkServer.MAIN_CLASS, "ctl"));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("vhost-blk ctl " + String.join(" ", command) + " did not finish within 30 s");
        }
        return new Ctl(List.of(command), p.exitValue(), new String(out, StandardCharsets.UTF_8),
                new String(err, StandardCharsets.UTF_8));
    }

    /** vhost-blk serve with the policy and a control socket, on a class path without the modules: they come from their jars. */
    private static final class ModuleServer extends ProcessBackend {
        ModuleServer(ExportSpec spec, Path policy, Path control) {
            super("vhost-blk server (modules)", spec, List.of(java(), ServerJvm.OPTIONS, "-cp",
                    serverClassPath(), VhostBlkServer.MAIN_CLASS, "serve",
                    "--socket", spec.socket().toString(), "--disk", spec.image().toString(),
                    "--size", Long.toString(spec.size()), "--queues", Integer.toString(spec.queues()),
                    "--policy", policy.toString(), "--control", control.toString()));
        }
    }

    private static String java() {
        return ModuleJars.java();
    }

    private static String serverClassPath() {
        return ModuleJars.serverClassPath(CHAIN);
    }

    /** The policy: both module jars (copied next to it) pinned by their SHA-256, in {@link #CHAIN} order. */
    private static Path writePolicy(Path runDir) throws IOException {
        return ModuleJars.writePolicy(runDir, "policy", "modules-guest", CHAIN);
    }

    private static void awaitFile(Path file, ModuleServer server) throws InterruptedException {
        long deadline = System.nanoTime() + ProcessBackend.READY_TIMEOUT.toNanos();
        while (!Files.exists(file)) {
            if (System.nanoTime() > deadline) {
                fail("the control socket " + file + " did not appear\n" + server.logTail(40));
            }
            Thread.sleep(50);
        }
    }
}
