package io.vhostblk.server;

import io.vhostblk.drivers.DriverKind;
import io.vhostblk.drivers.FaultSpec;
import io.vhostblk.drivers.RbdClient;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/** The options of {@code vhost-blk serve}, parsed and checked. */
public record ServeOptions(Path socket, Path disk, long size, int queues, int queueSize, boolean readOnly,
                           String deviceId, String vmName, boolean writeback, DriverKind driver, boolean direct,
                           boolean readZeroes, int pollMicros, int pollInflightMicros, Path policy, Path moduleDir, Path control, boolean kickOnRing,
                           InetSocketAddress metrics, RbdClient rbd, FaultSpec inject,
                           int submitBatch) {

    /** The VM name when neither --vm nor the policy gives one. */
    public static final String UNKNOWN_VM = "unknown";

    /** Parses the arguments after {@code serve} (one device; also a host configuration's section and ctl device-add). */
    public static ServeOptions parse(List<String> args) throws UsageException {
        try {
            return CommandKit.parse(new DeviceOptions(), args).options();
        } catch (UsageException e) {
            throw e;
        } catch (CommandUsageException e) {
            throw new UsageException(e.getMessage());
        }
    }

    /** {@code PORT} (on loopback) or {@code HOST:PORT}; an IPv6 host goes in brackets. */
    static InetSocketAddress metricsAddress(String option, String v) throws UsageException {
        try {
            return metricsAddress(v);
        } catch (IllegalArgumentException e) {
            throw new UsageException(option + ": " + e.getMessage());
        }
    }

    /** {@link #metricsAddress(String, String)} for a converter: the message does not name the option. */
    static InetSocketAddress metricsAddress(String v) {
        int colon = v.lastIndexOf(':');
        String host = colon < 0 ? "127.0.0.1" : v.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.isEmpty()) {
            throw new IllegalArgumentException("'" + v + "' has no address before ':'");
        }
        String port = colon < 0 ? v : v.substring(colon + 1);
        int n;
        try {
            n = Integer.parseInt(port);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + port + "' is not a port number");
        }
        if (n < 0 || n > 65535) {
            throw new IllegalArgumentException(n + " is outside 0..65535");
        }
        return InetSocketAddress.createUnresolved(host, n);
    }
}
