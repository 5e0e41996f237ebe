package io.vhostblk.modules.stats;

import io.vhostblk.hooks.LatencyHistogram;

import java.util.LinkedHashMap;
import java.util.Map;

/** One operation's numbers on one queue (or merged): latency histogram, requests, bytes, errors. */
final class OpStats {
    final LatencyHistogram latency;
    long bytes;
    long errors;

    OpStats(int bucketsPerDoubling) {
        this.latency = new LatencyHistogram(bucketsPerDoubling);
    }

    void add(OpStats other) {
        latency.add(other.latency);
        bytes += other.bytes;
        errors += other.errors;
    }

    /** The control socket's view: counts and latency percentiles in nanoseconds. */
    Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("count", latency.count());
        m.put("bytes", bytes);
        m.put("errors", errors);
        m.put("p50-ns", latency.percentile(50));
        m.put("p99-ns", latency.percentile(99));
        m.put("p99.9-ns", latency.percentile(99.9));
        m.put("max-ns", latency.max());
        return m;
    }
}
