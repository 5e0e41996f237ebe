package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.bench.BenchCommand;
import io.vhostblk.testsupport.ServerJvm;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One {@code serve --config} process serving several devices to independent vhost-user front-ends
 * ({@code vhost-blk bench --verify}) at once; devices added and removed while the others run; a
 * broken device left out without stopping the rest.
 */
class MultiDeviceServeTest {

    /** Runs a verifying bench job against {@code socket}; returns its exit status and output. */
    private static CompletableFuture<String> bench(Path socket, String runtime) {
        return CompletableFuture.supplyAsync(() -> {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
            int status = BenchCommand.run(List.of("--socket", socket.toString(), "--rw", "randrw", "--bs", "4k",
                    "--iodepth", "8", "--size", "8M", "--runtime", runtime, "--verify"), ps, ps);
            return status + "\n" + buf.toString(StandardCharsets.UTF_8);
        });
    }

    private static void assertBenchOk(String what, CompletableFuture<String> job) throws Exception {
        String r = job.get(120, TimeUnit.SECONDS);
        assertTrue(r.startsWith("0\n"), what + ": bench failed:\n" + r);
    }

    static Object ctl(Path control, String command) throws Exception {
        try (ControlClient c = ControlClient.connect(control)) {
            return Json.parse(c.request(command));
        }
    }

    static void awaitLog(Process server, Path log, String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.readString(log).contains(text)) {
            if (!server.isAlive()) {
                fail("serve exited (" + server.exitValue() + ") before logging '" + text + "':\n" + Files.readString(log));
            }
            if (System.nanoTime() > deadline) {
                fail("serve did not log '" + text + "' within 60 s:\n" + Files.readString(log));
            }
            Thread.sleep(20);
        }
    }

    static void awaitFiles(Process server, Path log, Path... files) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        for (Path f : files) {
            while (!Files.exists(f)) {
                if (!server.isAlive()) {
                    fail("serve exited (" + server.exitValue() + ") before " + f + " existed:\n" + Files.readString(log));
                }
                if (System.nanoTime() > deadline) {
                    fail(f + " did not appear within 60 s:\n" + Files.readString(log));
                }
                Thread.sleep(20);
            }
        }
    }

    @Test
    void oneProcessServesSeveralDevicesAndChangesTheSetUnderLoad(@TempDir Path dir) throws Exception {
        Path broken = Files.createDirectory(dir.resolve("not-an-image"));
        Path config = dir.resolve("host.conf");
        Files.writeString(config, """
                # three devices and one that cannot open
                control = ctl.sock
                [device a]
                vm = vm1
                socket = a.sock
                disk = a.img
                size = 8M
                [device b]
                vm = vm2
                socket = b.sock
                disk = b.img
                size = 8M
                queues = 2
                [device c]
                vm = vm3
                socket = c.sock
                disk = c.img
                size = 8M
                driver = file
                [device broken]
                socket = broken.sock
                disk = %s
                """.formatted(broken));
        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        Path log = dir.resolve("serve.log");
        Process server = new ProcessBuilder(java, ServerJvm.OPTIONS, "-cp",
                System.getProperty("java.class.path"), VhostBlkMain.class.getName(), "serve", "--config", config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            awaitFiles(server, log, dir.resolve("a.sock"), dir.resolve("b.sock"), dir.resolve("c.sock"), dir.resolve("ctl.sock"));
            assertFalse(Files.exists(dir.resolve("broken.sock")));
            assertTrue(Files.readString(log).contains("device broken not served"), Files.readString(log));

            // Three independent front-ends at once, each verifying what it wrote.
            List<CompletableFuture<String>> jobs = new ArrayList<>();
            for (String d : List.of("a", "b", "c")) {
                jobs.add(bench(dir.resolve(d + ".sock"), "1s"));
            }
            for (int i = 0; i < jobs.size(); i++) {
                assertBenchOk("device " + "abc".charAt(i), jobs.get(i));
            }
            @SuppressWarnings("unchecked")
            List<Map<String, Object>> devices = (List<Map<String, Object>>) ((Map<String, Object>) ctl(dir.resolve("ctl.sock"), "devices")).get("devices");
            assertEquals(List.of("a", "b", "c"), devices.stream().map(m -> m.get("id")).toList());
            assertEquals(List.of("vm1", "vm2", "vm3"), devices.stream().map(m -> m.get("vm")).toList());

            // Add d and remove c while a and b carry load.
            CompletableFuture<String> loadA = bench(dir.resolve("a.sock"), "3s");
            CompletableFuture<String> loadB = bench(dir.resolve("b.sock"), "3s");
            Map<?, ?> added = (Map<?, ?>) ctl(dir.resolve("ctl.sock"), "device-add --id d --vm vm4 --socket "
                    + dir.resolve("d.sock") + " --disk " + dir.resolve("d.img") + " --size 8M");
            assertEquals(Boolean.TRUE, added.get("ok"), added.toString());
            assertBenchOk("added device d", bench(dir.resolve("d.sock"), "1s"));
            Map<?, ?> removed = (Map<?, ?>) ctl(dir.resolve("ctl.sock"), "device-remove c");
            assertEquals(Boolean.TRUE, removed.get("ok"), removed.toString());
            assertFalse(Files.exists(dir.resolve("c.sock")), "a removed device's socket is gone");
            Map<?, ?> again = (Map<?, ?>) ctl(dir.resolve("ctl.sock"), "device-add --id a --socket " + dir.resolve("x.sock")
                    + " --disk " + dir.resolve("x.img") + " --size 8M");
            assertEquals(Boolean.FALSE, again.get("ok"));
            assertTrue(again.get("error").toString().contains("'a' is already served"), again.toString());
            assertBenchOk("device a under changes", loadA);
            assertBenchOk("device b under changes", loadB);

            server.destroy(); // SIGTERM: every device drains and syncs
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "serve did not stop");
            assertEquals(0, server.exitValue(), Files.readString(log));
            for (String d : List.of("a", "b", "d")) {
                assertFalse(Files.exists(dir.resolve(d + ".sock")), d + ".sock left behind");
            }
        } finally {
            if (server.isAlive()) {
                server.destroyForcibly();
                server.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
