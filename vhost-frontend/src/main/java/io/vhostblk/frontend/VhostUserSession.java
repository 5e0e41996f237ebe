package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.virtio.DirtyLog;
import io.vhostblk.virtio.GuestMemory;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioException;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static io.vhostblk.frontend.VhostUserProtocol.protocolBit;

/**
 * One front-end connection's state and message handling: negotiated features, the memory table,
 * and every vring from configuration through start and stop.
 *
 * <p>A ring runs ({@link VhostUserDevice#startQueue}) once it has a size, addresses, a kick
 * eventfd and a memory table, and is enabled. Without VHOST_USER_F_PROTOCOL_FEATURES a ring is
 * enabled by its kick fd; with it, rings start disabled and SET_VRING_ENABLE switches them.
 * Changing a running ring's parameters (call fd, addresses, the memory table, features) stops
 * it, applies the change and starts it again from where it stopped. All on one thread.
 */
public final class VhostUserSession implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VhostUserSession.class.getName());

    /** Offered protocol features: what this back-end implements, nothing it would have to fake. */
    public static final long PROTOCOL_FEATURES = protocolBit(VhostUserProtocol.PROTOCOL_F_MQ)
            | protocolBit(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
            | protocolBit(VhostUserProtocol.PROTOCOL_F_CONFIG)
            | protocolBit(VhostUserProtocol.PROTOCOL_F_RESET_DEVICE)
            | protocolBit(VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD)
            | protocolBit(VhostUserProtocol.PROTOCOL_F_LOG_SHMFD);

    /** SET_VRING_KICK/CALL/ERR u64: bits 0-7 the ring index, bit 8 "no descriptor". */
    private static final long VRING_INDEX_MASK = 0xff;
    private static final long VRING_NOFD = 0x100;

    private final String deviceId;
    private final VhostUserDevice device;
    private final VhostUserChannel channel;
    private final long offeredFeatures;
    private final Vring[] vrings;

    private long ackedFeatures;
    private long ackedProtocolFeatures;
    private boolean owner;
    private GuestMemory memory;
    /** Requests in flight, shared with the front-end so a restarted back-end can finish them; null until given. */
    private InflightArea inflight;
    /** The front-end's dirty bitmap (SET_LOG_BASE) and its mapping; written only while LOG_ALL is acked. */
    private DirtyLog dirtyLog;
    private MemorySegment dirtyLogMapping;
    /** SET_LOG_FD's eventfd: kept (and closed) but unused, as nothing is cached between log writes. */
    private EventFd logFd;

    public VhostUserSession(String deviceId, VhostUserDevice device, VhostUserChannel channel) {
        this.deviceId = deviceId;
        this.device = device;
        this.channel = channel;
        this.offeredFeatures = device.features() | VhostUserProtocol.F_PROTOCOL_FEATURES | VhostUserProtocol.F_LOG_ALL;
        int queues = device.maxQueues();
        if (queues < 1 || queues > VRING_INDEX_MASK + 1) {
            throw new IllegalArgumentException("device " + deviceId + ": maxQueues " + queues + " not in 1..256");
        }
        this.vrings = new Vring[queues];
        for (int i = 0; i < queues; i++) {
            vrings[i] = new Vring(i);
        }
    }

    /**
     * Reads and handles one request, sending its reply if it has one.
     *
     * @return false when the front-end closed the connection between messages
     * @throws VhostUserException a protocol violation (or a failure that cannot be acknowledged):
     *                            the caller closes the connection
     */
    public boolean serveOne() throws VhostUserException, IOException {
        VhostUserMessage msg = channel.receive(false);
        if (msg == null) {
            return false;
        }
        VhostUserMessage reply = handle(msg);
        if (reply != null) {
            channel.send(reply);
        }
        return true;
    }

    /** Handles one received request and returns its reply (or null); unclaimed descriptors are closed. */
    VhostUserMessage handle(VhostUserMessage msg) throws VhostUserException {
        LOG.log(Level.DEBUG, () -> "device " + deviceId + ": <- " + msg);
        try {
            VhostUserMessage reply = dispatch(msg);
            if (reply == null && msg.needsReply() && replyAckNegotiated()) {
                reply = msg.reply(VhostUserMessage.u64(0));
            }
            return reply;
        } catch (RequestFailedException e) {
            if (msg.needsReply() && replyAckNegotiated() && !msg.request().hasReply()) {
                LOG.log(Level.WARNING, "device " + deviceId + ": " + e.getMessage()
                        + (e.getCause() != null ? ": " + e.getCause().getMessage() : "") + " (reported to the front-end)");
                return msg.reply(VhostUserMessage.u64(1));
            }
            throw e;
        } finally {
            msg.closeUnclaimedFds();
        }
    }

    private boolean replyAckNegotiated() {
        return (ackedProtocolFeatures & protocolBit(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)) != 0;
    }

    private VhostUserMessage dispatch(VhostUserMessage msg) throws VhostUserException {
        VhostUserRequest request = msg.request();
        if (request == null) {
            throw new VhostUserException("unknown request " + msg.code());
        }
        if (msg.fdCount() > request.maxFds()) {
            throw new VhostUserException(msg.name() + ": carries " + msg.fdCount() + " file descriptors, at most "
                    + request.maxFds() + " allowed");
        }
        return switch (request) {
            case GET_FEATURES -> {
                requireEmpty(msg);
                yield msg.reply(VhostUserMessage.u64(offeredFeatures));
            }
            case SET_FEATURES -> {
                setFeatures(msg, u64(msg));
                yield null;
            }
            case GET_PROTOCOL_FEATURES -> {
                requireEmpty(msg);
                yield msg.reply(VhostUserMessage.u64(PROTOCOL_FEATURES));
            }
            case SET_PROTOCOL_FEATURES -> {
                long features = u64(msg);
                if ((features & ~PROTOCOL_FEATURES) != 0) {
                    throw new VhostUserException(msg.name() + ": protocol features 0x" + Long.toHexString(features)
                            + " include bits not offered (0x" + Long.toHexString(features & ~PROTOCOL_FEATURES) + ")");
                }
                ackedProtocolFeatures = features;
                yield null;
            }
            case SET_OWNER -> {
                requireEmpty(msg);
                if (owner) {
                    LOG.log(Level.DEBUG, () -> "device " + deviceId + ": repeated SET_OWNER ignored");
                }
                owner = true;
                yield null;
            }
            case RESET_OWNER -> {
                // Deprecated; the spec recommends treating it as "disable all rings", not as
                // discarding the negotiated state.
                requireEmpty(msg);
                resetRings();
                yield null;
            }
            case RESET_DEVICE -> {
                requireProtocolFeature(msg, VhostUserProtocol.PROTOCOL_F_RESET_DEVICE, "RESET_DEVICE");
                requireEmpty(msg);
                resetRings();
                // What was in flight belonged to the rings just forgotten (QEMU frees its copy on reset too).
                replaceInflight(null);
                ackedFeatures = 0;
                yield null;
            }
            case GET_INFLIGHT_FD -> {
                requireProtocolFeature(msg, VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD, "INFLIGHT_SHMFD");
                InflightInfo asked = InflightInfo.decode(msg);
                checkInflightGeometry(msg, asked);
                InflightArea area;
                try {
                    area = InflightArea.create(deviceId, asked.numQueues(), asked.queueSize());
                } catch (LinuxException e) {
                    throw new VhostUserException(msg.name() + ": cannot create the inflight area", e);
                }
                replaceInflight(area);
                LOG.log(Level.INFO, "device " + deviceId + ": inflight area created, " + asked.numQueues() + " queues of "
                        + asked.queueSize() + ", " + area.size() + " bytes");
                yield msg.reply(new InflightInfo(area.size(), 0, asked.numQueues(), asked.queueSize()).encode(), area.fd());
            }
            case SET_INFLIGHT_FD -> {
                requireProtocolFeature(msg, VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD, "INFLIGHT_SHMFD");
                InflightInfo given = InflightInfo.decode(msg);
                msg.requireFds(1);
                checkInflightGeometry(msg, given);
                long needed = InflightArea.bytesFor(given.numQueues(), given.queueSize());
                if (given.mmapSize() < needed || given.mmapOffset() < 0 || given.mmapOffset() % 4096 != 0) {
                    throw new VhostUserException(msg.name() + ": mmap_size " + given.mmapSize() + " at offset "
                            + given.mmapOffset() + " cannot hold " + given.numQueues() + " queues of " + given.queueSize()
                            + " (" + needed + " bytes at a page-aligned offset)");
                }
                InflightArea area;
                try {
                    area = InflightArea.adopt(msg.takeFd(0), given);
                } catch (LinuxException e) {
                    throw new RequestFailedException(msg.name() + ": cannot map the inflight area", e);
                }
                replaceInflight(area);
                LOG.log(Level.INFO, "device " + deviceId + ": inflight area set, " + given.numQueues() + " queues of "
                        + given.queueSize());
                yield null;
            }
            case GET_QUEUE_NUM -> {
                requireEmpty(msg);
                yield msg.reply(VhostUserMessage.u64(vrings.length));
            }
            case SET_MEM_TABLE -> {
                setMemTable(msg);
                yield null;
            }
            case SET_VRING_NUM -> {
                VringState s = VringState.decode(msg);
                Vring v = vring(msg, s.index());
                int num = s.num();
                if (num < 1 || num > VhostUserProtocol.MAX_QUEUE_SIZE || Integer.bitCount(num) != 1) {
                    throw new VhostUserException(msg.name() + ": vring " + v.index + " num " + Integer.toUnsignedString(num)
                            + " is not a power of two in 1.." + VhostUserProtocol.MAX_QUEUE_SIZE);
                }
                reconfigure(v, () -> v.size = num);
                yield null;
            }
            case SET_VRING_ADDR -> {
                VringAddress a = VringAddress.decode(msg);
                Vring v = vring(msg, a.index());
                if ((a.flags() & ~VringAddress.F_LOG) != 0) {
                    throw new VhostUserException(msg.name() + ": vring " + v.index + " flags 0x" + Integer.toHexString(a.flags())
                            + " has bits other than VHOST_VRING_F_LOG");
                }
                reconfigure(v, () -> v.address = a);
                yield null;
            }
            case SET_VRING_BASE -> {
                VringState s = VringState.decode(msg);
                Vring v = vring(msg, s.index());
                if (s.num() < 0 || s.num() > 0xffff) {
                    throw new VhostUserException(msg.name() + ": vring " + v.index + " base "
                            + Integer.toUnsignedString(s.num()) + " exceeds 65535");
                }
                reconfigure(v, () -> v.base = s.num());
                yield null;
            }
            case GET_VRING_BASE -> {
                VringState s = VringState.decode(msg);
                Vring v = vring(msg, s.index());
                stop(v);
                // The ring stays stopped until the front-end sets it up again with a new kick fd.
                v.kick = Vring.replace(v.kick, null);
                if (!protocolFeaturesNegotiated()) {
                    v.enabled = false;
                }
                yield msg.reply(new VringState(v.index, v.base).encode());
            }
            case SET_VRING_KICK -> {
                Vring v = vringFile(msg);
                EventFd kick = takeEventFd(msg);
                reconfigure(v, () -> {
                    v.kick = Vring.replace(v.kick, kick);
                    if (!protocolFeaturesNegotiated() && kick != null) {
                        v.enabled = true;
                    }
                });
                yield null;
            }
            case SET_VRING_CALL -> {
                Vring v = vringFile(msg);
                EventFd call = takeEventFd(msg);
                reconfigure(v, () -> v.call = Vring.replace(v.call, call));
                yield null;
            }
            case SET_VRING_ERR -> {
                // Kept (and closed on replacement) but unused: errors go to the guest as
                // request status or a broken-device state, not through this eventfd.
                Vring v = vringFile(msg);
                v.err = Vring.replace(v.err, takeEventFd(msg));
                yield null;
            }
            case SET_VRING_ENABLE -> {
                if (!protocolFeaturesNegotiated()) {
                    throw new VhostUserException(msg.name() + ": VHOST_USER_F_PROTOCOL_FEATURES was not negotiated");
                }
                VringState s = VringState.decode(msg);
                Vring v = vring(msg, s.index());
                if (s.num() != 0 && s.num() != 1) {
                    throw new VhostUserException(msg.name() + ": vring " + v.index + " enable value " + s.num() + " is not 0 or 1");
                }
                reconfigure(v, () -> v.enabled = s.num() == 1);
                yield null;
            }
            case GET_CONFIG -> {
                requireProtocolFeature(msg, VhostUserProtocol.PROTOCOL_F_CONFIG, "CONFIG");
                ConfigWindow w = ConfigWindow.decode(msg);
                byte[] config = device.config();
                if (!w.fits(config.length)) {
                    // The spec's error reply for GET_CONFIG is an empty payload.
                    LOG.log(Level.WARNING, "device " + deviceId + ": " + msg.name() + " window offset " + w.offset()
                            + " size " + w.size() + " outside the " + config.length + "-byte config space");
                    yield msg.reply(new byte[0]);
                }
                byte[] data = new byte[w.size()];
                System.arraycopy(config, w.offset(), data, 0, w.size());
                yield msg.reply(new ConfigWindow(w.offset(), w.size(), w.flags(), data).encode());
            }
            case SET_CONFIG -> {
                requireProtocolFeature(msg, VhostUserProtocol.PROTOCOL_F_CONFIG, "CONFIG");
                ConfigWindow w = ConfigWindow.decode(msg);
                int length = device.config().length;
                if (!w.fits(length)) {
                    throw new VhostUserException(msg.name() + ": window offset " + Integer.toUnsignedString(w.offset())
                            + " size " + w.size() + " outside the " + length + "-byte config space");
                }
                try {
                    device.writeConfig(w.offset(), w.data());
                } catch (VhostUserException e) {
                    throw new RequestFailedException(msg.name() + ": device refused the write at offset " + w.offset(), e);
                }
                yield null;
            }
            case SET_LOG_BASE -> {
                requireProtocolFeature(msg, VhostUserProtocol.PROTOCOL_F_LOG_SHMFD, "LOG_SHMFD");
                msg.requirePayloadSize(16);
                msg.requireFds(1);
                java.nio.ByteBuffer b = msg.payload();
                long size = b.getLong();
                long offset = b.getLong();
                int fd = msg.takeFd(0);
                MemorySegment mapping;
                try {
                    if (size <= 0 || offset < 0 || offset % 4096 != 0) {
                        throw new VhostUserException(msg.name() + ": log of " + size + " bytes at offset " + offset
                                + " is not a positive size at a page-aligned offset");
                    }
                    if (Libc.endsBefore(fd, offset + size)) {
                        throw new VhostUserException(msg.name() + ": log of " + size + " bytes at offset " + offset
                                + " runs past the end of its file (" + Libc.lseek(fd, 0, Libc.SEEK_END) + " bytes)");
                    }
                    mapping = Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, offset);
                } catch (LinuxException e) {
                    throw new RequestFailedException(msg.name() + ": cannot map the " + size + "-byte dirty log", e);
                } finally {
                    Libc.close(fd);
                }
                replaceDirtyLog(mapping);
                LOG.log(Level.INFO, "device " + deviceId + ": dirty log set, " + size + " bytes");
                // The front-end waits for this reply before it relies on the log.
                yield msg.reply(VhostUserMessage.u64(0));
            }
            case SET_LOG_FD -> {
                msg.requireFds(1);
                logFd = Vring.replace(logFd, EventFd.adopt(msg.takeFd(0)));
                yield null;
            }
            default -> throw new VhostUserException(msg.name() + ": not supported by this back-end"
                    + " (its protocol feature is not offered)");
        };
    }

    private void setFeatures(VhostUserMessage msg, long features) throws VhostUserException {
        if ((features & ~offeredFeatures) != 0) {
            throw new VhostUserException(msg.name() + ": features 0x" + Long.toHexString(features)
                    + " include bits not offered (0x" + Long.toHexString(features & ~offeredFeatures) + ")");
        }
        if (features == ackedFeatures) {
            return;
        }
        // Running rings were built with the old ring features (event idx, indirect).
        List<Vring> restart = stopAll();
        ackedFeatures = features;
        device.featuresAcked(features);
        LOG.log(Level.DEBUG, () -> "device " + deviceId + ": features acked 0x" + Long.toHexString(features));
        startAll(restart);
    }

    private void setMemTable(VhostUserMessage msg) throws VhostUserException {
        MemoryTable table = MemoryTable.decode(msg);
        int[] fds = new int[msg.fdCount()];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = msg.takeFd(i);
        }
        GuestMemory fresh;
        try {
            fresh = GuestMemory.map(table.regions(), fds);
        } catch (VirtioException e) {
            throw new RequestFailedException(msg.name() + ": mapping " + fds.length + " regions failed", e);
        }
        // Map first so a failure leaves the running rings on the old table.
        List<Vring> restart = stopAll();
        GuestMemory old = memory;
        memory = fresh;
        if (old != null) {
            old.close();
        }
        LOG.log(Level.INFO, "device " + deviceId + ": memory table set, " + table.regions().size() + " regions");
        startAll(restart);
    }

    private void checkInflightGeometry(VhostUserMessage msg, InflightInfo info) throws VhostUserException {
        if (info.numQueues() < 1 || info.numQueues() > vrings.length
                || info.queueSize() < 1 || info.queueSize() > VhostUserProtocol.MAX_QUEUE_SIZE) {
            throw new VhostUserException(msg.name() + ": " + info.numQueues() + " queues of " + info.queueSize()
                    + " not within 1.." + vrings.length + " queues of 1.." + VhostUserProtocol.MAX_QUEUE_SIZE);
        }
    }

    /** Swaps the dirty log; the rings that write to the old one stop first (its mapping goes away). */
    private void replaceDirtyLog(MemorySegment mapping) throws RequestFailedException {
        List<Vring> restart = stopAll();
        if (dirtyLogMapping != null) {
            Libc.munmap(dirtyLogMapping);
        }
        dirtyLogMapping = mapping;
        dirtyLog = mapping == null ? null : new DirtyLog(mapping);
        startAll(restart);
    }

    /** Swaps the inflight area; the rings that use the old one stop first (its mapping goes away). */
    private void replaceInflight(InflightArea fresh) throws RequestFailedException {
        List<Vring> restart = stopAll();
        InflightArea old = inflight;
        inflight = fresh;
        if (old != null) {
            old.close();
        }
        startAll(restart);
    }

    private static long u64(VhostUserMessage msg) throws VhostUserException {
        msg.requirePayloadSize(8);
        return msg.payload().getLong();
    }

    private static void requireEmpty(VhostUserMessage msg) throws VhostUserException {
        msg.requirePayloadSize(0);
    }

    private void requireProtocolFeature(VhostUserMessage msg, int bit, String name) throws VhostUserException {
        if ((ackedProtocolFeatures & protocolBit(bit)) == 0) {
            throw new VhostUserException(msg.name() + ": protocol feature " + name + " was not negotiated");
        }
    }

    private boolean protocolFeaturesNegotiated() {
        return (ackedFeatures & VhostUserProtocol.F_PROTOCOL_FEATURES) != 0;
    }

    private Vring vring(VhostUserMessage msg, int index) throws VhostUserException {
        if (index < 0 || index >= vrings.length) {
            throw new VhostUserException(msg.name() + ": vring index " + Integer.toUnsignedString(index)
                    + " out of range (device has " + vrings.length + " queues)");
        }
        return vrings[index];
    }

    /** Decodes a SET_VRING_KICK/CALL/ERR payload and checks the descriptor count against its no-fd bit. */
    private Vring vringFile(VhostUserMessage msg) throws VhostUserException {
        long value = u64(msg);
        if ((value & ~(VRING_INDEX_MASK | VRING_NOFD)) != 0) {
            throw new VhostUserException(msg.name() + ": reserved bits set in 0x" + Long.toHexString(value));
        }
        Vring v = vring(msg, (int) (value & VRING_INDEX_MASK));
        msg.requireFds((value & VRING_NOFD) != 0 ? 0 : 1);
        return v;
    }

    private static EventFd takeEventFd(VhostUserMessage msg) {
        return msg.fdCount() == 0 ? null : EventFd.adopt(msg.takeFd(0));
    }

    /** Stops the ring if it runs, applies {@code change}, then starts it if it is ready. */
    private void reconfigure(Vring v, Runnable change) throws RequestFailedException {
        stop(v);
        change.run();
        if (ready(v)) {
            start(v);
        }
    }

    private boolean ready(Vring v) {
        return v.size > 0 && v.address != null && v.kick != null && memory != null && v.enabled;
    }

    private void start(Vring v) throws RequestFailedException {
        VringAddress a = v.address;
        int resubmitted;
        int resumeAt;
        try {
            SplitVirtqueue queue = new SplitVirtqueue(memory, v.size, a.descUserAddr(), a.availUserAddr(),
                    a.usedUserAddr(), v.base, (ackedFeatures & VhostUserProtocol.F_RING_EVENT_IDX) != 0,
                    (ackedFeatures & VhostUserProtocol.F_RING_INDIRECT_DESC) != 0,
                    inflight != null ? inflight.region(v.index) : null);
            // Read before the queue's thread starts taking requests.
            resubmitted = queue.inflight().resubmitPending();
            resumeAt = queue.nextAvail();
            if ((ackedFeatures & VhostUserProtocol.F_LOG_ALL) != 0 && dirtyLog != null) {
                // Used-ring writes are logged only at the address the front-end gave for them.
                queue.logWritesTo(dirtyLog, (a.flags() & VringAddress.F_LOG) != 0 ? a.logGuestAddr() : -1);
            }
            if (v.call != null) {
                // The guest may be waiting for an interrupt a previous back-end never sent (it died,
                // or the front-end dropped the signal while reconnecting): a spurious one is harmless.
                v.call.signal();
            }
            v.worker = device.startQueue(v.index, queue, v.kick, v.call);
            v.queue = queue;
        } catch (VirtioException | VhostUserException e) {
            throw new RequestFailedException("device " + deviceId + ": " + v + " could not start (size " + v.size
                    + ", desc 0x" + Long.toHexString(a.descUserAddr()) + ", avail 0x" + Long.toHexString(a.availUserAddr())
                    + ", used 0x" + Long.toHexString(a.usedUserAddr()) + ")", e);
        }
        LOG.log(Level.INFO, "device " + deviceId + ": " + v + " started, size " + v.size + ", base " + v.base
                + (resumeAt != v.base ? ", resumed at avail index " + resumeAt + " from the inflight area" : "")
                + (resubmitted > 0 ? ", " + resubmitted + " requests in flight before the restart resubmitted" : ""));
    }

    private void stop(Vring v) {
        if (v.worker == null) {
            return;
        }
        v.worker.stop();
        v.base = v.queue.nextAvail();
        v.worker = null;
        v.queue = null;
        LOG.log(Level.INFO, "device " + deviceId + ": " + v + " stopped at avail index " + v.base);
    }

    private List<Vring> stopAll() {
        List<Vring> stopped = new ArrayList<>();
        for (Vring v : vrings) {
            if (v.running()) {
                stop(v);
                stopped.add(v);
            }
        }
        return stopped;
    }

    /** Restarts rings, trying every one before reporting the first failure. */
    private void startAll(List<Vring> rings) throws RequestFailedException {
        RequestFailedException first = null;
        for (Vring v : rings) {
            try {
                if (ready(v)) {
                    start(v);
                }
            } catch (RequestFailedException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** Stops every ring and forgets its configuration; the device drops its queue state. */
    private void resetRings() {
        stopAll();
        for (Vring v : vrings) {
            v.reset();
        }
        device.reset();
        LOG.log(Level.DEBUG, () -> "device " + deviceId + ": rings reset");
    }

    /** Whether vring {@code index} has a running worker (for tests and status). */
    boolean isRunning(int index) {
        return vrings[index].running();
    }

    /**
     * Ends the session: stops every queue (each drains its in-flight requests), resets the
     * device, unmaps guest memory and closes every descriptor. The channel is the caller's.
     */
    @Override
    public void close() {
        try {
            resetRings();
        } finally {
            if (inflight != null) {
                inflight.close();
                inflight = null;
            }
            if (dirtyLogMapping != null) {
                Libc.munmap(dirtyLogMapping);
                dirtyLogMapping = null;
                dirtyLog = null;
            }
            logFd = Vring.replace(logFd, null);
            if (memory != null) {
                memory.close();
                memory = null;
            }
        }
    }
}
