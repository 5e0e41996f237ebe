package io.vhostblk.bench;

import io.vhostblk.frontend.MemoryTable;
import io.vhostblk.frontend.VhostUserException;
import io.vhostblk.frontend.VhostUserFrontEnd;
import io.vhostblk.frontend.VhostUserProtocol;
import io.vhostblk.frontend.VhostUserRequest;
import io.vhostblk.frontend.VringAddress;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.virtio.BlkConfig;
import io.vhostblk.virtio.GuestMemory;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.PackedRingDriver;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.VirtioException;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;

/**
 * A vhost-user-blk device driven the way QEMU drives one: connect, negotiate features and
 * protocol features, read the config, share a memfd as guest RAM, set up and enable the rings.
 * {@link #close()} stops the rings (GET_VRING_BASE) and hangs up.
 */
final class DeviceSession implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(DeviceSession.class.getName());

    /** Device features the bench accepts when offered; anything else is left unacknowledged. */
    private static final long ACCEPTED_FEATURES = VirtioBlk.bit(VirtioBlk.F_VERSION_1)
            | VhostUserProtocol.F_PROTOCOL_FEATURES
            | VirtioBlk.bit(VirtioBlk.F_SIZE_MAX) | VirtioBlk.bit(VirtioBlk.F_SEG_MAX)
            | VirtioBlk.bit(VirtioBlk.F_BLK_SIZE) | VirtioBlk.bit(VirtioBlk.F_FLUSH)
            | VirtioBlk.bit(VirtioBlk.F_TOPOLOGY) | VirtioBlk.bit(VirtioBlk.F_CONFIG_WCE)
            | VirtioBlk.bit(VirtioBlk.F_MQ) | VirtioBlk.bit(VirtioBlk.F_RO);
    private static final long WANTED_PROTOCOL = VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_MQ)
            | VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
            | VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_CONFIG);

    private final VhostUserFrontEnd frontEnd;
    private final GuestRam ram;
    private final List<QueueRing> rings;
    private final long features;
    private final long capacityBytes;
    private final int deviceQueues;
    private boolean closed;

    private DeviceSession(VhostUserFrontEnd frontEnd, GuestRam ram, List<QueueRing> rings, long features,
                          long capacityBytes, int deviceQueues) {
        this.frontEnd = frontEnd;
        this.ram = ram;
        this.rings = rings;
        this.features = features;
        this.capacityBytes = capacityBytes;
        this.deviceQueues = deviceQueues;
    }

    /**
     * Connects and sets the device up for {@code queues} rings of {@code ringSize}, with guest RAM
     * of {@code ramBytes} (rings are allocated first; the caller allocates its buffers after).
     */
    static DeviceSession open(BenchOptions o, long ramBytes) throws BenchException {
        VhostUserFrontEnd fe;
        try {
            fe = VhostUserFrontEnd.connect(o.socket());
        } catch (IOException e) {
            throw new BenchException("cannot connect to " + o.socket() + ": " + e.getMessage(), e);
        }
        GuestRam ram = null;
        List<QueueRing> rings = new ArrayList<>();
        try {
            // QEMU's order: owner, features, protocol features, queue count, config; then at start
            // features, memory table and each ring (num, base, addr, kick, call), then enable.
            fe.setOwner();
            long offered = fe.getFeatures();
            if ((offered & VirtioBlk.bit(VirtioBlk.F_VERSION_1)) == 0) {
                throw new BenchException("back-end does not offer VIRTIO_F_VERSION_1 (features 0x"
                        + Long.toHexString(offered) + ")");
            }
            if ((offered & VhostUserProtocol.F_PROTOCOL_FEATURES) == 0) {
                throw new BenchException("back-end does not offer VHOST_USER_F_PROTOCOL_FEATURES; the bench needs"
                        + " GET_CONFIG to learn the capacity");
            }
            long protocol = fe.getProtocolFeatures() & WANTED_PROTOCOL;
            if ((protocol & VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_CONFIG)) == 0) {
                throw new BenchException("back-end does not offer VHOST_USER_PROTOCOL_F_CONFIG");
            }
            fe.setProtocolFeatures(protocol);
            if ((protocol & VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)) != 0) {
                fe.useReplyAck(true);
            }
            int maxQueues = 1;
            if ((protocol & VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_MQ)) != 0) {
                maxQueues = (int) Math.min(Integer.MAX_VALUE, fe.getU64(VhostUserRequest.GET_QUEUE_NUM));
            }
            BlkConfig config = readConfig(fe);
            if (o.packed() && (offered & VirtioBlk.bit(VirtioBlk.F_RING_PACKED)) == 0) {
                throw new BenchException("--packed: the back-end does not offer VIRTIO_F_RING_PACKED (features 0x"
                        + Long.toHexString(offered) + ")");
            }
            long wanted = ACCEPTED_FEATURES | (o.eventIdx() ? VirtioBlk.bit(VirtioBlk.F_RING_EVENT_IDX) : 0)
                    | (o.packed() ? VirtioBlk.bit(VirtioBlk.F_RING_PACKED) : 0);
            long features = offered & wanted;
            int deviceQueues = (features & VirtioBlk.bit(VirtioBlk.F_MQ)) != 0 ? Math.max(1, config.numQueues()) : 1;
            deviceQueues = Math.min(deviceQueues, maxQueues);
            if (o.queues() > deviceQueues) {
                throw new BenchException("--queues " + o.queues() + ": the device has " + deviceQueues + " queue(s)");
            }
            long capacity = config.capacity() * VirtioBlk.SECTOR_SIZE;
            fe.setFeatures(features);

            ram = GuestRam.memfd(0, new GuestRam.Region(0, ramBytes));
            GuestMemory.RegionSpec region = ram.memory().regions().get(0);
            fe.setMemTable(new MemoryTable(List.of(region)), ram.fd(0));
            boolean eventIdx = (features & VirtioBlk.bit(VirtioBlk.F_RING_EVENT_IDX)) != 0;
            for (int q = 0; q < o.queues(); q++) {
                EventFd kick = EventFd.create(false);
                EventFd call;
                try {
                    call = EventFd.create(true);
                } catch (LinuxException e) {
                    kick.close();
                    throw e;
                }
                fe.setVringNum(q, o.ringSize());
                int slots = o.iodepth();
                if (o.packed()) {
                    // vhost-user passes the driver event area as "avail", the device event area as "used".
                    PackedRingDriver ring = new PackedRingDriver(ram, o.ringSize());
                    rings.add(new QueueRing(q, new PackedBenchRing(ring, slots), kick, call));
                    fe.setVringBase(q, ring.vringBase());
                    fe.setVringAddr(new VringAddress(q, 0, GuestRam.userAddr(ring.descGpa()),
                            GuestRam.userAddr(ring.deviceEventGpa()), GuestRam.userAddr(ring.driverEventGpa()), 0));
                } else {
                    SplitRingDriver ring = new SplitRingDriver(ram, o.ringSize());
                    rings.add(new QueueRing(q, new SplitBenchRing(ring, slots), kick, call));
                    fe.setVringBase(q, 0);
                    fe.setVringAddr(new VringAddress(q, 0, GuestRam.userAddr(ring.descGpa()),
                            GuestRam.userAddr(ring.usedGpa()), GuestRam.userAddr(ring.availGpa()), 0));
                }
                fe.setVringKick(q, kick.fd());
                fe.setVringCall(q, call.fd());
            }
            for (int q = 0; q < o.queues(); q++) {
                fe.setVringEnable(q, true);
            }
            LOG.log(Level.DEBUG, () -> "connected to " + o.socket() + ": features 0x" + Long.toHexString(features)
                    + ", protocol 0x" + Long.toHexString(protocol) + ", capacity " + capacity + " bytes, event idx "
                    + eventIdx);
            return new DeviceSession(fe, ram, List.copyOf(rings), features, capacity, deviceQueues);
        } catch (BenchException | IOException | VhostUserException | VirtioException | RuntimeException e) {
            for (QueueRing r : rings) {
                r.kick().close();
                r.call().close();
            }
            if (ram != null) {
                ram.close();
            }
            fe.close();
            if (e instanceof BenchException b) {
                throw b;
            }
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new BenchException("setting up the device at " + o.socket() + " failed: " + e.getMessage(), e);
        }
    }

    private static BlkConfig readConfig(VhostUserFrontEnd fe) throws IOException, VhostUserException, BenchException {
        byte[] bytes = fe.getConfig(0, BlkConfig.SIZE);
        if (bytes == null) {
            // Older back-ends expose only the fields up to num_queues.
            byte[] shortWindow = fe.getConfig(0, BlkConfig.NUM_QUEUES_OFFSET + 2);
            if (shortWindow == null) {
                throw new BenchException("back-end refused GET_CONFIG");
            }
            bytes = java.util.Arrays.copyOf(shortWindow, BlkConfig.SIZE);
        }
        return BlkConfig.fromBytes(bytes);
    }

    GuestRam ram() {
        return ram;
    }

    List<QueueRing> rings() {
        return rings;
    }

    long features() {
        return features;
    }

    boolean eventIdx() {
        return (features & VirtioBlk.bit(VirtioBlk.F_RING_EVENT_IDX)) != 0;
    }

    boolean readOnly() {
        return (features & VirtioBlk.bit(VirtioBlk.F_RO)) != 0;
    }

    long capacityBytes() {
        return capacityBytes;
    }

    int deviceQueues() {
        return deviceQueues;
    }

    /** Hangs up at once without stopping the rings, for a back-end that is gone or about to be killed. */
    void abandon() {
        if (closed) {
            return;
        }
        closed = true;
        hangUp();
    }

    private void hangUp() {
        frontEnd.close();
        for (QueueRing r : rings) {
            r.kick().close();
            r.call().close();
        }
        ram.close();
    }

    /** Stops every ring (GET_VRING_BASE), hangs up and frees the guest RAM; the first failure is thrown after all of it. */
    @Override
    public void close() throws BenchException {
        if (closed) {
            return;
        }
        closed = true;
        BenchException failure = null;
        try {
            for (QueueRing r : rings) {
                try {
                    frontEnd.getVringBase(r.index());
                } catch (IOException | VhostUserException e) {
                    if (failure == null) {
                        failure = new BenchException("stopping vring " + r.index() + " failed: " + e.getMessage(), e);
                    }
                }
            }
        } finally {
            hangUp();
        }
        if (failure != null) {
            throw failure;
        }
    }
}
