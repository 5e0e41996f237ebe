package io.vhostblk.server;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.registry.Collector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.vhostblk.compat.BlockDevice;
import io.vhostblk.compat.QueueStats;
import io.vhostblk.drivers.FaultCounters;
import io.vhostblk.drivers.FaultyDriver;
import io.vhostblk.hooks.ChainEntry;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;
import java.util.function.ToLongFunction;

/**
 * Prometheus metrics over HTTP ({@code serve --metrics}), in the text format the official Java
 * client writes: devices, each module's counters and numeric statistics, and the JVM process.
 * Values are read from the devices when scraped, so the I/O path pays nothing for them.
 */
final class MetricsExporter implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MetricsExporter.class.getName());
    static final String PREFIX = "vhost_blk_";

    private final HTTPServer server;

    private MetricsExporter(HTTPServer server) {
        this.server = server;
    }

    /** Starts serving {@code /metrics} on {@code address} for the devices of {@code registry}. */
    static MetricsExporter start(InetSocketAddress address, DeviceRegistry registry) throws IOException {
        PrometheusRegistry prometheus = new PrometheusRegistry();
        register(prometheus, registry);
        QueueStats.timing(true);
        JvmMetrics.builder().register(prometheus);
        HTTPServer server = HTTPServer.builder()
                .hostname(address.getHostString())
                .port(address.getPort())
                .registry(prometheus)
                .buildAndStart();
        LOG.log(Level.INFO, "metrics: http://" + address.getHostString() + ":" + server.getPort() + "/metrics");
        return new MetricsExporter(server);
    }

    /** The port listened on (the one asked for, or the kernel's choice for 0). */
    int port() {
        return server.getPort();
    }

    /** Registers the device and module metrics of {@code devices} in {@code prometheus}. */
    static void register(PrometheusRegistry prometheus, DeviceRegistry devices) {
        GaugeWithCallback.builder().name(PREFIX + "device_info")
                .help("A device served by this process (value 1), with its VM, driver and target")
                .labelNames("device", "vm", "driver", "target")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        cb.call(1, d.id(), d.vmName(), d.driver().kind().toString(), d.driver().target());
                    }
                }).register(prometheus);
        deviceGauge(prometheus, devices, "device_capacity_bytes", "Bytes the guest sees", d -> d.capacitySectors() << 9);
        deviceGauge(prometheus, devices, "device_read_only", "1 when the device is exported read-only", d -> d.readOnly() ? 1 : 0);
        deviceGauge(prometheus, devices, "device_modules", "Modules in the device's chain", d -> d.chain().size());
        CounterWithCallback.builder().name(PREFIX + "injected_faults")
                .help("Faults injected by serve --inject, by kind (eio, enospc, short, latency, power_cut_*)")
                .labelNames("device", "vm", "kind")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        FaultCounters faults = FaultyDriver.countersOf(d.driver());
                        if (faults != null) {
                            faults.byKind().forEach((kind, n) -> cb.call(n, d.id(), d.vmName(), kind));
                        }
                    }
                }).register(prometheus);
        queueCounter(prometheus, devices, "requests", "Guest requests answered, by operation", QueueStats::requests);
        queueCounter(prometheus, devices, "bytes", "Bytes moved by guest requests answered OK, by operation", QueueStats::bytes);
        queueCounter(prometheus, devices, "request_io_errors", "Guest requests answered with an I/O error", QueueStats::ioErrors);
        queueCounter(prometheus, devices, "request_unsupported", "Guest requests answered unsupported", QueueStats::unsupported);
        GaugeWithCallback.builder().name(PREFIX + "requests_in_flight")
                .help("Guest requests started and not yet answered")
                .labelNames("device", "vm", "queue")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        for (QueueStats q : d.queueStats()) {
                            cb.call(q.inFlight(), d.id(), d.vmName(), Integer.toString(q.queueIndex()));
                        }
                    }
                }).register(prometheus);
        prometheus.register(new LatencyCollector(devices));
        moduleCounter(prometheus, devices, "module_requests_seen", "Requests that reached the module at the pre-call point", "seen");
        moduleCounter(prometheus, devices, "module_requests_completed",
                "Requests the module answered itself, without the layers beneath", "completed");
        moduleCounter(prometheus, devices, "module_requests_passed", "Requests the module passed to the layers beneath", "passed");
        moduleCounter(prometheus, devices, "module_errors", "Requests the module failed", "errors");
        moduleCounter(prometheus, devices, "module_bytes", "Bytes of the requests the module saw", "bytes");
        GaugeWithCallback.builder().name(PREFIX + "module_statistic")
                .help("A numeric statistic from the module's own report (ctl report DEVICE MODULE), by name")
                .labelNames("device", "vm", "module", "name")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        for (ChainEntry e : d.chain().entries()) {
                            for (Map.Entry<String, Object> r : report(d, e).entrySet()) {
                                if (r.getValue() instanceof Number n) {
                                    cb.call(n.doubleValue(), d.id(), d.vmName(), e.name(), r.getKey());
                                }
                            }
                        }
                    }
                }).register(prometheus);
    }

    /** A per-queue, per-operation counter read from each queue's {@link QueueStats}. */
    private static void queueCounter(PrometheusRegistry prometheus, DeviceRegistry devices, String name, String help,
                                     java.util.function.ToLongBiFunction<QueueStats, QueueStats.Op> value) {
        CounterWithCallback.builder().name(PREFIX + name).help(help)
                .labelNames("device", "vm", "queue", "op")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        for (QueueStats q : d.queueStats()) {
                            for (QueueStats.Op op : QueueStats.Op.values()) {
                                cb.call(value.applyAsLong(q, op), d.id(), d.vmName(), Integer.toString(q.queueIndex()),
                                        op.name().toLowerCase(java.util.Locale.ROOT));
                            }
                        }
                    }
                }).register(prometheus);
    }

    /**
     * {@code vhost_blk_request_duration_seconds}: the queues' power-of-two latency buckets as a
     * Prometheus histogram with bounds 2^10 ns (about 1 µs) to 2^34 ns (about 17 s).
     */
    private static final class LatencyCollector implements Collector {
        private static final int FIRST = 10;
        private static final int LAST = 34;
        private static final double[] BOUNDS = bounds();
        private final DeviceRegistry devices;

        LatencyCollector(DeviceRegistry devices) {
            this.devices = devices;
        }

        private static double[] bounds() {
            double[] b = new double[LAST - FIRST + 2];
            for (int k = FIRST; k <= LAST; k++) {
                b[k - FIRST] = (1L << k) / 1e9;
            }
            b[b.length - 1] = Double.POSITIVE_INFINITY;
            return b;
        }

        @Override
        public MetricSnapshot collect() {
            HistogramSnapshot.Builder h = HistogramSnapshot.builder().name(PREFIX + "request_duration_seconds")
                    .help("Time from decoding a guest request to writing its status byte (timed while metrics are on)");
            for (BlockDevice d : devices.devices()) {
                for (QueueStats q : d.queueStats()) {
                    for (QueueStats.Op op : List.of(QueueStats.Op.READ, QueueStats.Op.WRITE, QueueStats.Op.FLUSH)) {
                        long[] counts = new long[BOUNDS.length];
                        for (int b = 0; b < QueueStats.BUCKETS; b++) {
                            // bucket b holds latencies below 2^b ns: it belongs under the first bound 2^k with k >= b
                            int at = b <= FIRST ? 0 : b > LAST ? BOUNDS.length - 1 : b - FIRST;
                            counts[at] += q.latencyBucket(op, b);
                        }
                        h.dataPoint(HistogramSnapshot.HistogramDataPointSnapshot.builder()
                                .classicHistogramBuckets(ClassicHistogramBuckets.of(BOUNDS, counts))
                                .sum(q.latencyNanos(op) / 1e9)
                                .labels(Labels.of("device", d.id(), "vm", d.vmName(), "queue", Integer.toString(q.queueIndex()),
                                        "op", op.name().toLowerCase(java.util.Locale.ROOT)))
                                .build());
                    }
                }
            }
            return h.build();
        }
    }

    private static void deviceGauge(PrometheusRegistry prometheus, DeviceRegistry devices, String name, String help,
                                    ToDoubleFunction<BlockDevice> value) {
        GaugeWithCallback.builder().name(PREFIX + name).help(help)
                .labelNames("device", "vm")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        cb.call(value.applyAsDouble(d), d.id(), d.vmName());
                    }
                }).register(prometheus);
    }

    private static void moduleCounter(PrometheusRegistry prometheus, DeviceRegistry devices, String name, String help,
                                      String counter) {
        ToLongFunction<ChainEntry> value = e -> e.counters().getOrDefault(counter, 0L);
        CounterWithCallback.builder().name(PREFIX + name).help(help)
                .labelNames("device", "vm", "module")
                .callback(cb -> {
                    for (BlockDevice d : devices.devices()) {
                        for (ChainEntry e : d.chain().entries()) {
                            cb.call(value.applyAsLong(e), d.id(), d.vmName(), e.name());
                        }
                    }
                }).register(prometheus);
    }

    /** A module's report; one that throws is logged and left out of this scrape. */
    private static Map<String, Object> report(BlockDevice d, ChainEntry e) {
        try {
            Map<String, Object> r = e.instance().report();
            return r == null ? Map.of() : r;
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, d.label() + " module=" + e.name() + ": report() failed during a metrics scrape", ex);
            return Map.of();
        }
    }

    @Override
    public void close() {
        server.close();
        QueueStats.timing(false);
    }
}
