package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.testsupport.ServerJvm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A {@code serve --config} process with devices added and removed through the control socket a
 * thousand times ({@code -Dvhostblk.churn.devices=N}): every removal gives back what the addition
 * took, so the process ends with the descriptors and threads it had after the first rounds, and
 * its resident memory stays bounded.
 */
class DeviceChurnTest {
    private static final int DEVICES = Integer.getInteger("vhostblk.churn.devices", 1000);
    private static final int WARM_UP = 20;
    /** A generous bound for a JVM serving a RAM disk or two; a leak per device would cross it. */
    private static final long MAX_RSS_KIB = 1 << 20;

    @Test
    void aThousandDevicesAddedAndRemovedLeaveNothingBehind(@TempDir Path dir) throws Exception {
        Path config = dir.resolve("host.conf");
        Files.writeString(config, """
                control = ctl.sock
                [device base]
                socket = base.sock
                driver = ram
                size = 1M
                """);
        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        Path log = dir.resolve("serve.log");
        Process server = new ProcessBuilder(java, ServerJvm.OPTIONS, "-cp",
                System.getProperty("java.class.path"), VhostBlkMain.class.getName(), "serve", "--config", config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        Path control = dir.resolve("ctl.sock");
        try {
            MultiDeviceServeTest.awaitFiles(server, log, control);
            // The file appears at bind(), a moment before listen(): wait for the line logged after it.
            MultiDeviceServeTest.awaitLog(server, log, "control socket listening on " + control);
            long fdsAfterWarmUp = -1;
            long threadsAfterWarmUp = -1;
            for (int i = 0; i < DEVICES; i++) {
                String id = "churn" + i;
                Map<?, ?> added = ctl(control, "device-add --id " + id + " --socket " + dir.resolve("churn.sock")
                        + " --driver ram --size 1M --queues 2");
                assertEquals(Boolean.TRUE, added.get("ok"), () -> "device-add " + id + ": " + added);
                Map<?, ?> removed = ctl(control, "device-remove " + id);
                assertEquals(Boolean.TRUE, removed.get("ok"), () -> "device-remove " + id + ": " + removed);
                if (i == WARM_UP - 1) {
                    fdsAfterWarmUp = count("/proc/" + server.pid() + "/fd");
                    threadsAfterWarmUp = count("/proc/" + server.pid() + "/task");
                }
            }
            long fds = count("/proc/" + server.pid() + "/fd");
            long threads = count("/proc/" + server.pid() + "/task");
            // A leak per device would add hundreds; a few come and go with the control connections.
            assertTrue(fds <= fdsAfterWarmUp + 4, "descriptors grew from " + fdsAfterWarmUp + " to " + fds + " over " + DEVICES + " devices");
            assertTrue(threads <= threadsAfterWarmUp + 4,
                    "threads grew from " + threadsAfterWarmUp + " to " + threads + " over " + DEVICES + " devices");
            long rss = rssKib(server.pid());
            assertTrue(rss < MAX_RSS_KIB, "resident memory " + rss + " KiB after " + DEVICES + " devices");
            server.destroy();
            assertTrue(server.waitFor(60, TimeUnit.SECONDS), "serve did not stop");
            assertEquals(0, server.exitValue(), Files.readString(log));
            System.out.println("[churn] " + DEVICES + " devices added and removed: " + fds + " descriptors, " + threads
                    + " threads, " + rss + " KiB resident");
        } finally {
            if (server.isAlive()) {
                server.destroyForcibly();
                server.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    private static Map<?, ?> ctl(Path control, String command) throws Exception {
        return (Map<?, ?>) MultiDeviceServeTest.ctl(control, command);
    }

    private static long count(String dir) throws Exception {
        try (var s = Files.list(Path.of(dir))) {
            return s.count();
        }
    }

    private static long rssKib(long pid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return fail("no VmRSS in /proc/" + pid + "/status");
    }
}
