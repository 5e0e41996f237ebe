package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.PackedRingDriver;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.GuestRam;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;

/**
 * A one-queue virtio-blk front-end for tests, set up in QEMU's order over a real socket, with
 * guest RAM it owns (so it outlives a connection, as a running guest's RAM outlives a back-end).
 * Requests are synchronous: build the chain, kick, wait (bounded) for the used element.
 */
final class BlkTestFrontEnd implements AutoCloseable {
    static final long FEATURES = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | VhostUserProtocol.F_PROTOCOL_FEATURES
            | VirtioBlk.bit(VirtioBlk.F_FLUSH);
    static final long PROTOCOL = VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_REPLY_ACK)
            | VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_CONFIG)
            | VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_RESET_DEVICE);
    /** How long one request may take before the test fails (generous: CI machines are shared). */
    private static final int WAIT_MILLIS = 10_000;
    static final int RING_SIZE = 16;

    final GuestRam ram;
    SplitRingDriver ring;
    /** The packed ring when the front-end negotiates VIRTIO_F_RING_PACKED, else null (then {@link #ring} is used). */
    PackedRingDriver packedRing;
    final EventFd kick;
    final EventFd call;
    private final long header;
    private final long data;
    private final long status;
    private final int maxData;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment pollFd = arena.allocate(Libc.POLLFD);
    VhostUserFrontEnd fe;
    /** Protocol features {@link #setUp} negotiates (besides the inflight bit); a test may add some. */
    long protocol = PROTOCOL;
    /** The inflight area the back-end handed out (kept across back-ends, as QEMU keeps it), or -1. */
    int inflightFd = -1;
    MemorySegment inflight;
    private InflightInfo inflightInfo;

    BlkTestFrontEnd(int maxData) throws Exception {
        this(maxData, false);
    }

    /** With {@code packed}, the ring is a packed virtqueue (a reconnect passes the packed vring base). */
    BlkTestFrontEnd(int maxData, boolean packed) throws Exception {
        this.ram = GuestRam.memfd(0, new GuestRam.Region(0, 1 << 20));
        this.ring = new SplitRingDriver(ram, RING_SIZE);
        this.packedRing = packed ? new PackedRingDriver(ram, RING_SIZE) : null;
        this.kick = EventFd.create(true);
        this.call = EventFd.create(true);
        this.maxData = maxData;
        this.header = ram.alloc(VirtioBlk.HEADER_BYTES * RING_SIZE, 16);
        this.data = ram.alloc((long) maxData * RING_SIZE, 4096);
        this.status = ram.alloc(RING_SIZE, 1);
    }

    /** A one-queue virtio-blk server over {@code driver} on {@code socket}, as `vhost-blk serve` runs it. */
    static VhostUserServer serve(String deviceId, Path socket, io.vhostblk.drivers.BlockDriver driver) throws IOException {
        return serve(deviceId, socket, driver, 256);
    }

    /** As {@link #serve(String, Path, io.vhostblk.drivers.BlockDriver)}, accepting queues of at most {@code maxQueueSize}. */
    static VhostUserServer serve(String deviceId, Path socket, io.vhostblk.drivers.BlockDriver driver, int maxQueueSize)
            throws IOException {
        return VhostUserServer.start(deviceId, socket, true, new VirtioBlkDevice(
                new io.vhostblk.compat.BlockDevice(deviceId, "vm", driver, true), 1, maxQueueSize, QueueTuning.DEFAULTS));
    }

    /** Connects and sets the ring up; the ring continues at {@code base} (a reconnect passes its avail index). */
    void connect(Path socket, int base) throws IOException, VhostUserException {
        connect(socket, base, false);
    }

    /** As {@link #connect(Path, int)}; with {@code trackInflight}, gets (once) and sets the inflight area as QEMU does. */
    void connect(Path socket, int base, boolean trackInflight) throws IOException, VhostUserException {
        fe = VhostUserFrontEnd.connect(socket);
        setUp(base, trackInflight);
    }

    /** The setup sequence on the current connection (again after a RESET_DEVICE). */
    void setUp(int base, boolean trackInflight) throws IOException, VhostUserException {
        fe.setOwner();
        fe.getFeatures();
        fe.getProtocolFeatures();
        long inflightBit = VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD);
        fe.setProtocolFeatures(protocol | (trackInflight ? inflightBit : 0));
        fe.useReplyAck(true);
        fe.setFeatures(FEATURES | (packedRing != null ? VhostUserProtocol.F_RING_PACKED : 0));
        if (trackInflight) {
            if (inflightFd < 0) {
                fe.send(VhostUserRequest.GET_INFLIGHT_FD, false, new InflightInfo(0, 0, 1, RING_SIZE).encode());
                VhostUserMessage reply = fe.receiveReply(VhostUserRequest.GET_INFLIGHT_FD);
                reply.requireFds(1);
                inflightInfo = InflightInfo.decode(reply);
                inflightFd = reply.takeFd(0);
                inflight = Libc.mmap(inflightInfo.mmapSize(), Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED,
                        inflightFd, inflightInfo.mmapOffset());
            }
            fe.set(VhostUserRequest.SET_INFLIGHT_FD, inflightInfo.encode(), inflightFd);
        }
        fe.setMemTable(new MemoryTable(List.of(ram.memory().regions().get(0))), ram.fd(0));
        fe.setVringNum(0, RING_SIZE);
        fe.setVringBase(0, base);
        if (packedRing != null) {
            fe.setVringAddr(new VringAddress(0, 0, GuestRam.userAddr(packedRing.descGpa()),
                    GuestRam.userAddr(packedRing.deviceEventGpa()), GuestRam.userAddr(packedRing.driverEventGpa()), 0));
        } else {
            fe.setVringAddr(new VringAddress(0, 0, GuestRam.userAddr(ring.descGpa()), GuestRam.userAddr(ring.usedGpa()),
                    GuestRam.userAddr(ring.availGpa()), 0));
        }
        fe.setVringKick(0, kick.fd());
        fe.setVringCall(0, call.fd());
        fe.setVringEnable(0, true);
    }

    /** A device reset as the guest sees it: a fresh, zeroed ring, and (as QEMU does) the inflight area dropped. */
    void resetRing() {
        ring = new SplitRingDriver(ram, RING_SIZE);
        if (inflightFd >= 0) {
            Libc.munmap(inflight);
            Libc.close(inflightFd);
            inflightFd = -1;
        }
    }

    /** Hangs up without stopping the ring first, as a crashing front-end would. */
    void hangUp() {
        if (fe != null) {
            fe.close();
            fe = null;
        }
    }

    /** Offers a read or write of {@code len} bytes at {@code sector} in request slot {@code slot}; returns the head. */
    int offer(int slot, int type, long sector, int len) {
        return offer(slot, type, sector, len, data + (long) slot * maxData);
    }

    /** As {@link #offer(int, int, long, int)} with the data buffer at guest address {@code buf} (anywhere). */
    int offer(int slot, int type, long sector, int len, long buf) {
        MemorySegment h = ram.at(header + (long) slot * VirtioBlk.HEADER_BYTES, VirtioBlk.HEADER_BYTES);
        h.set(SplitRingDriver.U32, 0, type);
        h.set(SplitRingDriver.U32, 4, 0);
        h.set(SplitRingDriver.U64, 8, sector);
        ram.at(status + slot, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 0x7f);
        if (packedRing != null) {
            int id = packedRing.addRequest(header + (long) slot * VirtioBlk.HEADER_BYTES, VirtioBlk.HEADER_BYTES, buf, len,
                    type == VirtioBlk.T_IN, status + slot);
            if (id < 0) {
                throw new IllegalStateException("ring full");
            }
            return id;
        }
        int head = ring.addChain(SplitRingDriver.Buf.readable(header + (long) slot * VirtioBlk.HEADER_BYTES, VirtioBlk.HEADER_BYTES),
                new SplitRingDriver.Buf(buf, len, type == VirtioBlk.T_IN), SplitRingDriver.Buf.writable(status + slot, 1));
        if (head < 0) {
            throw new IllegalStateException("ring full");
        }
        return head;
    }

    MemorySegment dataOf(int slot, int len) {
        return ram.at(data + (long) slot * maxData, len);
    }

    byte statusOf(int slot) {
        return ram.at(status + slot, 1).get(ValueLayout.JAVA_BYTE, 0);
    }

    void publishAndKick() {
        if (packedRing != null) {
            packedRing.publish();
        } else {
            ring.publish();
        }
        kick.signal();
    }

    /** Waits (bounded) for the next used element and returns its head. */
    int awaitUsed() {
        long deadline = System.nanoTime() + WAIT_MILLIS * 1_000_000L;
        while (true) {
            int id = packedRing != null ? packedRing.reapUsed() : ring.reapUsed();
            if (id >= 0) {
                return id;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no used element within " + WAIT_MILLIS + " ms (" + (packedRing != null
                        ? "packed ring base 0x" + Integer.toHexString(packedRing.vringBase())
                        : "used idx " + ring.usedIdx() + ", avail idx " + ring.availIdx()) + ")");
            }
            pollFd.set(ValueLayout.JAVA_INT, 0, call.fd());
            pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            pollFd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
            Libc.poll(pollFd, 1, 100);
            call.drain();
        }
    }

    /** A synchronous request in slot 0: returns its status byte. */
    byte run(int type, long sector, int len) {
        int head = offer(0, type, sector, len);
        publishAndKick();
        int used = awaitUsed();
        if (used != head) {
            throw new AssertionError("used head " + used + ", expected " + head);
        }
        return statusOf(0);
    }

    @Override
    public void close() {
        hangUp();
        if (inflightFd >= 0) {
            Libc.munmap(inflight);
            Libc.close(inflightFd);
        }
        kick.close();
        call.close();
        ram.close();
        arena.close();
    }
}
