package io.vhostblk.drivers;

import java.nio.file.Path;

/**
 * How the rbd driver reaches a Ceph cluster: its configuration file, the client's name and keyring,
 * and how long a request may wait for the cluster before it fails.
 *
 * @param conf           {@code ceph.conf}, or null for librados's default search
 *                       ({@code $CEPH_CONF}, {@code /etc/ceph/ceph.conf}, ...)
 * @param id             the client name without {@code client.} ({@code admin} when null)
 * @param keyring        the keyring file, or null for the configuration's
 * @param timeoutSeconds how long connecting, and each request, may wait for the monitors and OSDs
 *                       before failing with ETIMEDOUT (the guest sees an I/O error)
 */
public record RbdClient(Path conf, String id, Path keyring, int timeoutSeconds) {
    /** librados's defaults, and a 30 s request timeout. */
    public static final RbdClient DEFAULTS = new RbdClient(null, null, null, 30);

    public RbdClient {
        if (timeoutSeconds < 1 || timeoutSeconds > 86_400) {
            throw new IllegalArgumentException("rbd timeout must be 1..86400 seconds, not " + timeoutSeconds);
        }
    }

    /** For logs and errors: the configuration and the client name. */
    String describe() {
        return "client." + (id == null ? "admin" : id) + " with " + (conf == null ? "the default ceph.conf" : conf);
    }
}
