package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One librados connection, shared by every rbd device of this process that reaches the same cluster
 * with the same client settings (librados keeps one set of monitor and OSD sessions and threads
 * per connection). Reference-counted: the last {@link #release} shuts it down. Used at device start
 * and stop only, so plain synchronisation is fine.
 */
final class RadosCluster {
    private static final System.Logger LOG = System.getLogger(RadosCluster.class.getName());
    private static final Map<RbdClient, RadosCluster> OPEN = new HashMap<>();

    private final RbdClient client;
    private final long handle;
    private final Map<String, Long> pools = new HashMap<>();
    private int users;

    private RadosCluster(RbdClient client, long handle) {
        this.client = client;
        this.handle = handle;
    }

    /** The connection for {@code client}, connecting on first use; pair with {@link #release}. */
    static synchronized RadosCluster acquire(RbdClient client) throws DriverException {
        Librbd.requireLoaded();
        RadosCluster cluster = OPEN.get(client);
        if (cluster == null) {
            cluster = connect(client);
            OPEN.put(client, cluster);
        }
        cluster.users++;
        return cluster;
    }

    private static RadosCluster connect(RbdClient client) throws DriverException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            long id = client.id() == null ? 0 : arena.allocateFrom(client.id()).address();
            int rc = (int) Librbd.RADOS_CREATE.invokeExact(out.address(), id);
            if (rc < 0) {
                throw new DriverException("cannot create a librados handle for " + client.describe() + ": " + Errno.describe(-rc));
            }
            long handle = out.get(JAVA_LONG, 0);
            try {
                long conf = client.conf() == null ? 0 : arena.allocateFrom(client.conf().toString()).address();
                rc = (int) Librbd.RADOS_CONF_READ_FILE.invokeExact(handle, conf);
                if (rc < 0) {
                    throw new DriverException("cannot read the Ceph configuration "
                            + (client.conf() == null ? "(default search: $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf)"
                            : client.conf().toString()) + ": " + Errno.describe(-rc));
                }
                if (client.keyring() != null) {
                    set(arena, handle, "keyring", client.keyring().toString());
                }
                String timeout = Integer.toString(client.timeoutSeconds());
                // Bound every wait on the cluster: connecting, monitor commands and each OSD request
                // fail with ETIMEDOUT instead of blocking a queue while the cluster is unreachable.
                set(arena, handle, "client_mount_timeout", timeout);
                set(arena, handle, "rados_mon_op_timeout", timeout);
                set(arena, handle, "rados_osd_op_timeout", timeout);
                // No librbd write-back cache: each queue has its own image handle, and a guest FLUSH
                // on one queue must cover writes completed on every queue.
                set(arena, handle, "rbd_cache", "false");
                // A discarded range must read back as zeros (the driver advertises that), also
                // when it covers only part of an object.
                set(arena, handle, "rbd_skip_partial_discard", "false");
                rc = (int) Librbd.RADOS_CONNECT.invokeExact(handle);
                if (rc < 0) {
                    throw new DriverException("cannot connect to the Ceph cluster as " + client.describe() + ": "
                            + connectFailure(rc, client));
                }
            } catch (DriverException e) {
                Librbd.RADOS_SHUTDOWN.invokeExact(handle);
                throw e;
            }
            LOG.log(System.Logger.Level.INFO, "connected to the Ceph cluster as {0}", client.describe());
            return new RadosCluster(client, handle);
        } catch (DriverException e) {
            throw e;
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
    }

    private static String connectFailure(int rc, RbdClient client) {
        return switch (-rc) {
            case Errno.ETIMEDOUT -> "ETIMEDOUT: no monitor answered within " + client.timeoutSeconds() + " s (is the cluster up, is 'mon host' right?)";
            case Errno.EPERM, Errno.EACCES -> Errno.describe(-rc) + ": the cluster refused the key (wrong keyring or client name?)";
            case Errno.ENOENT -> "ENOENT: no keyring or monitor address found (check --rbd-keyring and 'mon host')";
            default -> Errno.describe(-rc);
        };
    }

    private static void set(Arena arena, long handle, String option, String value) throws DriverException {
        int rc;
        try {
            rc = (int) Librbd.RADOS_CONF_SET.invokeExact(handle, arena.allocateFrom(option).address(),
                    arena.allocateFrom(value).address());
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
        if (rc < 0) {
            throw new DriverException("librados refused option " + option + " = " + value + ": " + Errno.describe(-rc));
        }
    }

    /** The I/O context of {@code pool} (made once per pool and kept while the connection lives). */
    synchronized long pool(String pool) throws DriverException {
        Long existing = pools.get(pool);
        if (existing != null) {
            return existing;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            int rc = (int) Librbd.RADOS_IOCTX_CREATE.invokeExact(handle, arena.allocateFrom(pool).address(), out.address());
            if (rc < 0) {
                throw new DriverException("cannot open pool '" + pool + "' as " + client.describe() + ": "
                        + (rc == -Errno.ENOENT ? "the pool does not exist" : Errno.describe(-rc)));
            }
            long ioctx = out.get(JAVA_LONG, 0);
            pools.put(pool, ioctx);
            return ioctx;
        } catch (DriverException e) {
            throw e;
        } catch (Throwable t) {
            throw Librbd.impossible(t);
        }
    }

    RbdClient client() {
        return client;
    }

    /** Drops one user; the last one destroys the pools' contexts and shuts the connection down. */
    void release() {
        synchronized (RadosCluster.class) {
            if (--users > 0) {
                return;
            }
            OPEN.remove(client);
            try {
                for (long ioctx : pools.values()) {
                    Librbd.RADOS_IOCTX_DESTROY.invokeExact(ioctx);
                }
                Librbd.RADOS_SHUTDOWN.invokeExact(handle);
            } catch (Throwable t) {
                throw Librbd.impossible(t);
            }
            LOG.log(System.Logger.Level.INFO, "disconnected from the Ceph cluster ({0})", client.describe());
        }
    }

    /** Connections open now (tests: devices on one cluster share one). */
    static synchronized int openConnections() {
        return OPEN.size();
    }
}
