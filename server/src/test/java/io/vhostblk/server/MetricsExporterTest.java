package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.FaultSpec;
import io.vhostblk.drivers.FaultyDriver;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.VirtioBlk;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** serve --metrics: the text format is valid for promtool, and the counters follow the I/O. */
class MetricsExporterTest {

    private static String scrape(int port) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return r.body();
    }

    /** The value of the sample {@code name{labels}}; fails when it is missing. */
    private static double sample(String text, String name, String labels) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name + "{" + labels + "}") + " (\\S+)$").matcher(text);
        if (!m.find()) {
            fail("no sample " + name + "{" + labels + "} in:\n" + text);
        }
        return Double.parseDouble(m.group(1));
    }

    /** Runs Prometheus's own checker over the scrape (Debian package prometheus; bin/run-tests installs it). */
    private static void promtoolAccepts(String text, Path dir) throws Exception {
        Path promtool = Path.of("/usr/bin/promtool");
        if (!Files.isExecutable(promtool)) {
            fail("promtool is missing: install the Debian package prometheus (bin/run-tests does)");
        }
        Path file = dir.resolve("scrape.txt");
        Files.writeString(file, text);
        Process p = new ProcessBuilder(promtool.toString(), "check", "metrics").redirectInput(file.toFile())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "promtool did not finish");
        assertEquals(0, p.exitValue(), "promtool check metrics refused the scrape:\n" + out);
        // promtool prints lint findings (names, units, help) even when it exits 0: ours must have none.
        assertEquals("", out.strip(), "promtool check metrics found problems");
    }

    @Test
    void scrapesAreValidAndFollowTheIo(@TempDir Path dir) throws Exception {
        try (RamDriver driver = RamDriver.create(1 << 20)) {
            BlockDevice device = new BlockDevice("disk0", "vm1", driver, true);
            DeviceRegistry registry = new DeviceRegistry();
            TestModules modules = new TestModules();
            registry.register(device);
            ControlProtocol control = new ControlProtocol(registry, modules);
            assertTrue(control.handle("enable disk0 alpha").contains("\"ok\":true"));
            try (MetricsExporter metrics = MetricsExporter.start(InetSocketAddress.createUnresolved("127.0.0.1", 0), registry);
                 GuestQueue guest = new GuestQueue(device)) {
                String before = scrape(metrics.port());
                promtoolAccepts(before, dir);
                assertEquals(1, sample(before, "vhost_blk_device_info",
                        "device=\"disk0\",driver=\"ram\",target=\"" + driver.target() + "\",vm=\"vm1\""));
                assertEquals(1 << 20, sample(before, "vhost_blk_device_capacity_bytes", "device=\"disk0\",vm=\"vm1\""));
                double seen0 = sample(before, "vhost_blk_module_requests_seen_total", "device=\"disk0\",module=\"alpha\",vm=\"vm1\"");

                for (int i = 0; i < 5; i++) {
                    assertEquals(VirtioBlk.S_OK, guest.write(i * 8L, new byte[4096]));
                }
                String after = scrape(metrics.port());
                promtoolAccepts(after, dir);
                assertEquals(seen0 + 5, sample(after, "vhost_blk_module_requests_seen_total",
                        "device=\"disk0\",module=\"alpha\",vm=\"vm1\""));
                assertEquals(5 * 4096, sample(after, "vhost_blk_module_bytes_total",
                        "device=\"disk0\",module=\"alpha\",vm=\"vm1\"") - sample(before, "vhost_blk_module_bytes_total",
                        "device=\"disk0\",module=\"alpha\",vm=\"vm1\""));
                assertTrue(sample(after, "vhost_blk_module_statistic",
                        "device=\"disk0\",module=\"alpha\",name=\"requests\",vm=\"vm1\"") >= 5);
                assertTrue(after.contains("process_resident_memory_bytes"), "process metrics are exported");
                // The queue's own figures: the 5 writes, their bytes, and 5 timed latencies.
                String q = "device=\"disk0\",op=\"write\",queue=\"0\",vm=\"vm1\"";
                assertEquals(5, sample(after, "vhost_blk_requests_total", q) - sample(before, "vhost_blk_requests_total", q));
                assertEquals(5 * 4096, sample(after, "vhost_blk_bytes_total", q) - sample(before, "vhost_blk_bytes_total", q));
                assertEquals(0, sample(after, "vhost_blk_request_io_errors_total", q));
                assertEquals(0, sample(after, "vhost_blk_requests_in_flight", "device=\"disk0\",queue=\"0\",vm=\"vm1\""));
                double timed = sample(after, "vhost_blk_request_duration_seconds_count", q);
                assertEquals(timed, sample(after, "vhost_blk_request_duration_seconds_bucket",
                        "device=\"disk0\",op=\"write\",queue=\"0\",vm=\"vm1\",le=\"+Inf\""), "+Inf holds every request");
                assertTrue(timed >= 5, "the writes made while metrics were on are timed: " + timed);
                assertTrue(sample(after, "vhost_blk_request_duration_seconds_sum", q) > 0);
            }
        }
    }

    @Test
    void injectedFaultsReachTheControlSocketAndTheMetricsEnospcApartFromEio(@TempDir Path dir) throws Exception {
        try (RamDriver ram = RamDriver.create(1 << 20);
             FaultyDriver driver = FaultyDriver.wrap(ram, FaultSpec.parse("eio=0-4096,enospc-after=8192"), "disk0")) {
            BlockDevice device = new BlockDevice("disk0", "vm1", driver, true);
            BlockDevice plain = new BlockDevice("disk1", "vm1", RamDriver.create(1 << 20), true);
            DeviceRegistry registry = new DeviceRegistry();
            registry.register(device);
            registry.register(plain);
            ControlProtocol control = new ControlProtocol(registry, new TestModules());
            try (MetricsExporter metrics = MetricsExporter.start(InetSocketAddress.createUnresolved("127.0.0.1", 0), registry);
                 GuestQueue guest = new GuestQueue(device)) {
                assertEquals(VirtioBlk.S_IOERR, guest.write(0, new byte[4096]), "bytes 0-4096 fail with EIO");
                assertEquals(VirtioBlk.S_OK, guest.write(8, new byte[4096]));
                assertEquals(VirtioBlk.S_OK, guest.write(16, new byte[4096]), "8192 bytes fit");
                assertEquals(VirtioBlk.S_IOERR, guest.write(24, new byte[4096]), "ENOSPC past 8192 bytes");
                assertEquals(VirtioBlk.S_IOERR, guest.write(32, new byte[4096]));

                Map<?, ?> reply = (Map<?, ?>) Json.parse(control.handle("devices"));
                List<?> list = (List<?>) reply.get("devices");
                Map<?, ?> faulty = (Map<?, ?>) list.get(0);
                assertEquals("disk0", faulty.get("id"));
                assertEquals(Map.of("eio", 1L, "enospc", 2L, "short", 0L, "latency", 0L, "power_cut_refused", 0L,
                        "power_cut_dropped", 0L, "power_cut_kept", 0L), faulty.get("injectedFaults"));
                assertFalse(((Map<?, ?>) list.get(1)).containsKey("injectedFaults"), "disk1 injects nothing");

                String text = scrape(metrics.port());
                promtoolAccepts(text, dir);
                assertEquals(1, sample(text, "vhost_blk_injected_faults_total", "device=\"disk0\",kind=\"eio\",vm=\"vm1\""));
                assertEquals(2, sample(text, "vhost_blk_injected_faults_total", "device=\"disk0\",kind=\"enospc\",vm=\"vm1\""));
                assertEquals(0, sample(text, "vhost_blk_injected_faults_total", "device=\"disk0\",kind=\"short\",vm=\"vm1\""));
                assertFalse(text.contains("vhost_blk_injected_faults_total{device=\"disk1\""), "disk1 injects nothing");
            } finally {
                plain.driver().close();
            }
        }
    }

    @Test
    void theAddressDefaultsToLoopback() throws Exception {
        InetSocketAddress a = ServeOptions.metricsAddress("--metrics", "9750");
        assertEquals("127.0.0.1", a.getHostString());
        assertEquals(9750, a.getPort());
        InetSocketAddress b = ServeOptions.metricsAddress("--metrics", "[::1]:9751");
        assertEquals("::1", b.getHostString());
        assertEquals(9751, b.getPort());
        UsageException e = org.junit.jupiter.api.Assertions.assertThrows(UsageException.class,
                () -> ServeOptions.metricsAddress("--metrics", "localhost:99999"));
        assertTrue(e.getMessage().contains("--metrics"), e.getMessage());
    }
}
