package io.vhostblk.bench;

import java.util.Locale;

/**
 * The outcome of one bench job: throughput, latency percentiles, errors and verification, and
 * CPU per I/O of the back-end (when its pid was given) and of the generator itself. Latencies
 * are in microseconds; CPU figures are NaN when not measured.
 */
public record BenchReport(String socket, String rw, int blockSize, int iodepth, int queues, boolean eventIdx,
                          boolean busyPoll, long capacityBytes, long spanBytes, double seconds, long ios, long reads,
                          long writes, long bytes, double iops, double mibPerSecond, double latMeanUs,
                          double latP50Us, double latP99Us, double latP999Us, double latMaxUs, long errors,
                          int firstErrorStatus, boolean verify, long verifiedBlocks, long verifyMismatches,
                          long firstMismatchOffset, long backendPid, double backendCpuUsPerIo,
                          double backendCpuPercent, double generatorCpuUsPerIo, double generatorCpuPercent,
                          double generatorAllocBytesPerIo, double idleSeconds, double idleBackendCpuPercent) {

    /** Whether the job did I/O and every request succeeded (and verified, with --verify). */
    public boolean ok() {
        return ios > 0 && errors == 0 && verifyMismatches == 0;
    }

    /** Why {@link #ok()} is false, or an empty string. */
    public String problem() {
        StringBuilder b = new StringBuilder();
        if (ios == 0) {
            b.append("no request completed in the measured interval; ");
        }
        if (errors > 0) {
            b.append(errors).append(" request(s) failed (first status ").append(firstErrorStatus)
                    .append(statusName(firstErrorStatus)).append("); ");
        }
        if (verifyMismatches > 0) {
            b.append(verifyMismatches).append(" of ").append(verifiedBlocks)
                    .append(" block(s) read back differ from what was written (first at byte offset ")
                    .append(firstMismatchOffset).append("); ");
        }
        return b.isEmpty() ? "" : b.substring(0, b.length() - 2);
    }

    private static String statusName(int status) {
        return switch (status) {
            case 1 -> " IOERR";
            case 2 -> " UNSUPP";
            case 0xff -> ", never written by the back-end";
            default -> "";
        };
    }

    /** A few human-readable lines, fio style. */
    public String toText() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "%s: rw=%s bs=%d iodepth=%d queues=%d event_idx=%s %s%n", socket, rw,
                blockSize, iodepth, queues, eventIdx ? "on" : "off", busyPoll ? "busy-poll" : "interrupts"));
        b.append(String.format(Locale.ROOT, "  io: %d requests (%d reads, %d writes) in %.2f s over %d of %d bytes%n",
                ios, reads, writes, seconds, spanBytes, capacityBytes));
        b.append(String.format(Locale.ROOT, "  iops=%.0f bw=%.1f MiB/s%n", iops, mibPerSecond));
        b.append(String.format(Locale.ROOT, "  lat (us): mean=%.1f p50=%.1f p99=%.1f p99.9=%.1f max=%.1f%n",
                latMeanUs, latP50Us, latP99Us, latP999Us, latMaxUs));
        if (backendPid > 0) {
            b.append(String.format(Locale.ROOT, "  back-end pid %d cpu: %.2f us/io (%.0f%% of one CPU)%n",
                    backendPid, backendCpuUsPerIo, backendCpuPercent));
        }
        if (idleSeconds > 0) {
            b.append(String.format(Locale.ROOT, "  back-end idle (connected, queues started, no I/O) for %.1f s: "
                    + "%.2f%% of one CPU%n", idleSeconds, idleBackendCpuPercent));
        }
        b.append(String.format(Locale.ROOT,
                "  generator cpu: %.2f us/io (%.0f%% of one CPU), %.3f bytes allocated/io on queue threads%n",
                generatorCpuUsPerIo, generatorCpuPercent, generatorAllocBytesPerIo));
        b.append(String.format(Locale.ROOT, "  errors: %d%s%n", errors,
                errors > 0 ? " (first status " + firstErrorStatus + statusName(firstErrorStatus) + ")" : ""));
        if (verify) {
            b.append(String.format(Locale.ROOT, "  verify: %d blocks checked, %d mismatched%n", verifiedBlocks,
                    verifyMismatches));
        }
        return b.toString();
    }

    /** One JSON object; NaN figures are null. */
    public String toJson() {
        StringBuilder b = new StringBuilder("{");
        field(b, "socket", socket);
        field(b, "rw", rw);
        field(b, "bs", blockSize);
        field(b, "iodepth", iodepth);
        field(b, "queues", queues);
        field(b, "event_idx", eventIdx);
        field(b, "busy_poll", busyPoll);
        field(b, "capacity_bytes", capacityBytes);
        field(b, "span_bytes", spanBytes);
        field(b, "seconds", seconds);
        field(b, "ios", ios);
        field(b, "reads", reads);
        field(b, "writes", writes);
        field(b, "bytes", bytes);
        field(b, "iops", iops);
        field(b, "mib_per_s", mibPerSecond);
        field(b, "lat_mean_us", latMeanUs);
        field(b, "lat_p50_us", latP50Us);
        field(b, "lat_p99_us", latP99Us);
        field(b, "lat_p999_us", latP999Us);
        field(b, "lat_max_us", latMaxUs);
        field(b, "errors", errors);
        field(b, "first_error_status", firstErrorStatus);
        field(b, "verify", verify);
        field(b, "verified_blocks", verifiedBlocks);
        field(b, "verify_mismatches", verifyMismatches);
        field(b, "backend_pid", backendPid);
        field(b, "backend_cpu_us_per_io", backendCpuUsPerIo);
        field(b, "backend_cpu_percent", backendCpuPercent);
        field(b, "generator_cpu_us_per_io", generatorCpuUsPerIo);
        field(b, "generator_cpu_percent", generatorCpuPercent);
        field(b, "generator_alloc_bytes_per_io", generatorAllocBytesPerIo);
        field(b, "idle_seconds", idleSeconds);
        field(b, "idle_backend_cpu_percent", idleBackendCpuPercent);
        field(b, "ok", ok());
        b.setLength(b.length() - 1);
        return b.append('}').toString();
    }

    private static void field(StringBuilder b, String name, Object value) {
        b.append('"').append(name).append("\":");
        switch (value) {
            case String s -> {
                b.append('"');
                for (char c : s.toCharArray()) {
                    if (c == '"' || c == '\\') {
                        b.append('\\').append(c);
                    } else if (c < 0x20) {
                        b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
                }
                b.append('"');
            }
            case Double d -> b.append(d.isNaN() || d.isInfinite() ? "null" : String.format(Locale.ROOT, "%.3f", d));
            default -> b.append(value);
        }
        b.append(',');
    }
}
