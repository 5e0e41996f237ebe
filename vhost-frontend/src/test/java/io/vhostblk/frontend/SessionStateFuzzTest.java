package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The vhost-user session state machine in isolation, with a fixed seed: random sequences of
 * plausible and malformed messages (every request code, wrong payload sizes, missing and extra
 * descriptors, out-of-range rings, hostile ring contents) go straight to
 * {@link VhostUserSession#handle}. Properties: each message is answered or refused with a
 * {@link VhostUserException}, nothing else is thrown; the device never has a queue started twice
 * or left running after the session closes, and never reads a ring whose memory table is gone;
 * after close every eventfd and memfd the session was given or made is closed and unmapped.
 * {@code -Dvhostblk.fuzz.iterations=N} runs more sequences, {@code -Dvhostblk.fuzz.seed=S} others.
 */
class SessionStateFuzzTest {
    private static final int SEQUENCES = Integer.getInteger("vhostblk.fuzz.iterations", 20_000) / 10;
    private static final long SEED = Long.getLong("vhostblk.fuzz.seed", 20261130);
    private static final int MESSAGES = 60;
    private static final long RAM = 64 * 1024;
    /** Where the front-end says guest RAM sits in its address space (any value: only translation uses it). */
    private static final long USER_BASE = 0x7f12_0000_0000L;
    private static final int QUEUES = 2;
    private static final int F_DUPFD_CLOEXEC = 1030;

    private SplittableRandom random;

    @Test
    void everyMessageSequenceIsAnsweredOrRefusedAndLeavesNothingBehind() throws Exception {
        // Every start and stop logs at INFO: thousands of sequences would bury the report.
        java.util.logging.Logger sessionLog = java.util.logging.Logger.getLogger(VhostUserSession.class.getName());
        java.util.logging.Level level = sessionLog.getLevel();
        sessionLog.setLevel(java.util.logging.Level.SEVERE);
        try {
            fuzz();
        } finally {
            sessionLog.setLevel(level);
        }
    }

    private void fuzz() throws Exception {
        long baselineFds = ourDescriptors();
        long baselineMaps = memfdMappings();
        int refused = 0;
        int answered = 0;
        int started = 0;
        for (int s = 0; s < SEQUENCES; s++) {
            long seed = SEED + s;
            random = new SplittableRandom(seed);
            ContractDevice device = new ContractDevice();
            List<String> trace = new ArrayList<>();
            Guest guest = new Guest();
            try (VhostUserSession session = new VhostUserSession("fuzz", device, null)) {
                for (int m = 0; m < MESSAGES; m++) {
                    VhostUserMessage msg = message(guest);
                    trace.add(msg.toString());
                    try {
                        VhostUserMessage reply = session.handle(msg);
                        answered++;
                        if (reply != null) {
                            assertTrue(reply.isReply(), "seed " + seed + ": reply without the reply flag after " + trace);
                        }
                    } catch (VhostUserException e) {
                        refused++;
                    } catch (RuntimeException | AssertionError e) {
                        throw new AssertionError("seed " + seed + ": " + msg.name() + " threw " + e + " after " + trace, e);
                    }
                    for (int q = 0; q < QUEUES; q++) {
                        assertEquals(device.running[q], session.isRunning(q),
                                "seed " + seed + ": session and device disagree on whether ring " + q + " runs after " + trace);
                    }
                    guest.scribble();
                }
            } finally {
                guest.close();
            }
            started += device.starts;
            if (!device.violations.isEmpty()) {
                fail("seed " + seed + ": " + device.violations + " after " + trace);
            }
            for (int q = 0; q < QUEUES; q++) {
                assertTrue(!device.running[q], "seed " + seed + ": ring " + q + " still running after close, after " + trace);
            }
        }
        assertEquals(baselineFds, ourDescriptors(), "eventfds or memfds left open after " + SEQUENCES + " closed sessions");
        assertEquals(baselineMaps, memfdMappings(), "memfd mappings left after " + SEQUENCES + " closed sessions");
        // The generator must reach the interesting states, not just bounce off the first check.
        assertTrue(started > SEQUENCES / 2, "only " + started + " queue starts in " + SEQUENCES + " sequences");
        assertTrue(answered > 0 && refused > 0, answered + " answered, " + refused + " refused");
    }

    /** A random message: a plausible one for a random request most of the time, malformed otherwise. */
    private VhostUserMessage message(Guest guest) throws LinuxException {
        VhostUserRequest[] all = VhostUserRequest.values();
        int code;
        VhostUserRequest request;
        if (random.nextInt(50) == 0) {
            code = random.nextBoolean() ? 0 : 41 + random.nextInt(100);
            request = null;
        } else {
            request = weighted(all);
            code = request.code();
        }
        int flags = VhostUserProtocol.VERSION | (random.nextInt(3) == 0 ? VhostUserProtocol.FLAG_NEED_REPLY : 0);
        byte[] payload = request == null ? new byte[random.nextInt(16)] : payload(request, guest);
        int fdCount = request == null ? 0 : fdsFor(request, payload);
        if (random.nextInt(12) == 0) {
            payload = mutate(payload);
        }
        if (random.nextInt(12) == 0) {
            fdCount = random.nextInt(3);
        }
        int[] fds = new int[fdCount];
        for (int i = 0; i < fdCount; i++) {
            fds[i] = request == VhostUserRequest.SET_MEM_TABLE || request == VhostUserRequest.ADD_MEM_REG
                    || request == VhostUserRequest.SET_LOG_BASE || request == VhostUserRequest.SET_INFLIGHT_FD
                    ? guest.dupRam() : EventFd.create(true).fd();
        }
        return new VhostUserMessage(code, flags, payload, fds);
    }

    /** Ring set-up messages come more often than the rest, so sequences get queues started. */
    private VhostUserRequest weighted(VhostUserRequest[] all) {
        VhostUserRequest[] setup = {VhostUserRequest.SET_FEATURES, VhostUserRequest.SET_PROTOCOL_FEATURES,
                VhostUserRequest.SET_MEM_TABLE, VhostUserRequest.SET_VRING_NUM, VhostUserRequest.SET_VRING_ADDR,
                VhostUserRequest.SET_VRING_BASE, VhostUserRequest.SET_VRING_KICK, VhostUserRequest.SET_VRING_CALL,
                VhostUserRequest.SET_VRING_ENABLE, VhostUserRequest.GET_VRING_BASE};
        return random.nextInt(3) == 0 ? all[random.nextInt(all.length)] : setup[random.nextInt(setup.length)];
    }

    private int ring() {
        return switch (random.nextInt(20)) {
            case 0 -> random.nextInt();
            case 1 -> QUEUES;
            default -> random.nextInt(QUEUES);
        };
    }

    private long ringAddress() {
        return switch (random.nextInt(6)) {
            case 0 -> random.nextLong();
            case 1 -> USER_BASE + RAM - random.nextInt(64);
            default -> USER_BASE + 4096L * random.nextInt(12);
        };
    }

    private byte[] payload(VhostUserRequest request, Guest guest) {
        ByteBuffer b;
        switch (request) {
            case SET_FEATURES -> {
                long features = FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES;
                return VhostUserMessage.u64(random.nextInt(8) == 0 ? random.nextLong()
                        : random.nextBoolean() ? features : features & ~VhostUserProtocol.F_PROTOCOL_FEATURES);
            }
            case SET_PROTOCOL_FEATURES -> {
                return VhostUserMessage.u64(random.nextInt(8) == 0 ? random.nextLong()
                        : VhostUserSession.PROTOCOL_FEATURES & random.nextLong());
            }
            case SET_MEM_TABLE -> {
                int n = random.nextInt(10) == 0 ? random.nextInt(10) : 1;
                b = VhostUserMessage.newPayload(MemoryTable.HEADER_SIZE + n * MemoryTable.REGION_SIZE);
                b.putInt(n).putInt(0);
                for (int i = 0; i < n; i++) {
                    long size = random.nextInt(8) == 0 ? random.nextLong(2 * RAM) : RAM;
                    b.putLong(random.nextInt(8) == 0 ? random.nextLong() : 0).putLong(size)
                            .putLong(USER_BASE).putLong(random.nextInt(8) == 0 ? 4096L * random.nextInt(4) : 0);
                }
                return b.array();
            }
            case ADD_MEM_REG, REM_MEM_REG -> {
                b = VhostUserMessage.newPayload(8 + MemoryTable.REGION_SIZE);
                b.putLong(0).putLong(random.nextInt(4) == 0 ? RAM : 2 * RAM).putLong(RAM)
                        .putLong(USER_BASE + 2 * RAM).putLong(0);
                return b.array();
            }
            case SET_VRING_NUM -> {
                int[] sizes = {1, 2, 8, 16, 0, 3, 1024, 32768, 65536, -1};
                return new VringState(ring(), random.nextInt(4) == 0 ? sizes[random.nextInt(sizes.length)] : 8).encode();
            }
            case SET_VRING_BASE, GET_VRING_BASE, SET_VRING_ENABLE -> {
                int value = request == VhostUserRequest.SET_VRING_ENABLE
                        ? (random.nextInt(10) == 0 ? random.nextInt() : 1)
                        : (random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(20));
                return new VringState(ring(), value).encode();
            }
            case SET_VRING_ADDR -> {
                return new VringAddress(ring(), random.nextInt(10) == 0 ? random.nextInt() : random.nextInt(2),
                        ringAddress(), ringAddress(), ringAddress(), random.nextLong(RAM)).encode();
            }
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                long value = ring() & 0xffL;
                if (random.nextInt(8) == 0) {
                    value |= 0x100;
                }
                if (random.nextInt(20) == 0) {
                    value = random.nextLong();
                }
                return VhostUserMessage.u64(value);
            }
            case GET_INFLIGHT_FD, SET_INFLIGHT_FD -> {
                // Sizes past the end of the guest's 4*RAM file must be refused, not mapped (SIGBUS on first touch).
                long[] sizes = {RAM, 16 * RAM, random.nextLong()};
                return new InflightInfo(sizes[random.nextInt(sizes.length)], 0,
                        random.nextInt(6) == 0 ? random.nextInt() : 1 + random.nextInt(QUEUES),
                        random.nextInt(6) == 0 ? random.nextInt() : 8).encode();
            }
            case GET_CONFIG, SET_CONFIG -> {
                int size = random.nextInt(6) == 0 ? random.nextInt(300) : random.nextInt(61);
                int offset = random.nextInt(6) == 0 ? random.nextInt() : random.nextInt(61);
                return new ConfigWindow(offset, size, 0, new byte[size]).encode();
            }
            case SET_LOG_BASE -> {
                b = VhostUserMessage.newPayload(16);
                long[] sizes = {RAM / 4096 / 8, 4096, 16 * RAM, random.nextLong()};
                b.putLong(sizes[random.nextInt(sizes.length)])
                        .putLong(random.nextInt(6) == 0 ? random.nextLong() : 0);
                return b.array();
            }
            default -> {
                return random.nextInt(4) == 0 ? new byte[random.nextInt(48)] : new byte[0];
            }
        }
    }

    private static int fdsFor(VhostUserRequest request, byte[] payload) {
        return switch (request) {
            case SET_MEM_TABLE -> Math.max(0, Math.min(8, ByteBuffer.wrap(payload).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt()));
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR ->
                    (ByteBuffer.wrap(payload).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong() & 0x100) != 0 ? 0 : 1;
            case SET_LOG_BASE, SET_LOG_FD, SET_INFLIGHT_FD, ADD_MEM_REG, REM_MEM_REG, SET_BACKEND_REQ_FD -> 1;
            default -> 0;
        };
    }

    private byte[] mutate(byte[] payload) {
        return switch (random.nextInt(3)) {
            case 0 -> java.util.Arrays.copyOf(payload, random.nextInt(payload.length + 9));
            case 1 -> {
                byte[] p = payload.clone();
                if (p.length > 0) {
                    p[random.nextInt(p.length)] ^= (byte) (1 + random.nextInt(255));
                }
                yield p;
            }
            default -> {
                byte[] p = new byte[random.nextInt(300)];
                random.nextBytes(p);
                yield p;
            }
        };
    }

    /** The front-end's guest RAM: one memfd the messages hand out duplicates of, which the test scribbles on. */
    private final class Guest implements AutoCloseable {
        final int fd = Libc.memfdCreate("fuzz-guest", Libc.MFD_CLOEXEC);
        final MemorySegment view;

        Guest() throws LinuxException {
            Libc.check("ftruncate", Libc.ftruncate(fd, 4 * RAM), "fuzz guest ram");
            view = Libc.mmap(4 * RAM, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        }

        /** A descriptor for a message to carry; the session owns it from then on. */
        int dupRam() throws LinuxException {
            return (int) Libc.check("fcntl", Libc.fcntl(fd, F_DUPFD_CLOEXEC, 0), "fuzz guest ram");
        }

        /** Hostile ring contents: random bytes where rings usually sit, sometimes. */
        void scribble() {
            if (random.nextInt(4) == 0) {
                long at = 4096L * random.nextInt(12) + random.nextInt(4096 - 8);
                view.set(ValueLayout.JAVA_LONG_UNALIGNED, at, random.nextLong());
            }
        }

        @Override
        public void close() {
            Libc.munmap(view);
            Libc.close(fd);
        }
    }

    /** A device that checks the session keeps its side of the contract, and drains rings as a real one would. */
    private static final class ContractDevice implements VhostUserDevice {
        final boolean[] running = new boolean[QUEUES];
        final List<String> violations = new ArrayList<>();
        int starts;

        @Override
        public long features() {
            return FakeDevice.FEATURES;
        }

        @Override
        public int maxQueues() {
            return QUEUES;
        }

        @Override
        public byte[] config() {
            return new byte[60];
        }

        @Override
        public void writeConfig(int offset, byte[] data) throws VhostUserException {
            if (offset < 20) {
                throw new VhostUserException("config offset " + offset + " is read-only");
            }
        }

        @Override
        public void featuresAcked(long features) {
            for (int q = 0; q < QUEUES; q++) {
                if (running[q]) {
                    violations.add("features changed while ring " + q + " runs");
                }
            }
        }

        @Override
        public QueueWorker startQueue(int index, SplitVirtqueue queue, EventFd kick, EventFd call) {
            if (running[index]) {
                violations.add("ring " + index + " started twice");
            }
            if (kick == null) {
                violations.add("ring " + index + " started without a kick fd");
            }
            running[index] = true;
            starts++;
            return new QueueWorker() {
                private boolean stopped;

                @Override
                public void stop() {
                    if (stopped) {
                        return;
                    }
                    stopped = true;
                    running[index] = false;
                    // A real loop drains what the guest offered: this reads the ring, which must still be mapped.
                    try {
                        for (int i = 0; i < 64 && queue.popAvail() >= 0; i++) {
                            // consumed
                        }
                    } catch (VirtioException e) {
                        // A hostile ring: the real loop marks the queue broken; nothing to check here.
                    } catch (IllegalStateException e) {
                        violations.add("ring " + index + " read after its memory was unmapped: " + e.getMessage());
                    }
                }
            };
        }

        @Override
        public void reset() {
            for (int q = 0; q < QUEUES; q++) {
                if (running[q]) {
                    violations.add("reset while ring " + q + " runs");
                }
            }
        }
    }

    /** Open eventfds and memfds of this process: the only descriptors the session handles. */
    private static long ourDescriptors() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(p -> {
                try {
                    String target = Files.readSymbolicLink(p).toString();
                    return target.contains("eventfd") || target.contains("memfd:");
                } catch (IOException e) {
                    return false; // the directory stream's own descriptor, gone by now
                }
            }).count();
        }
    }

    private static long memfdMappings() throws IOException {
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
            return lines.filter(l -> l.contains("memfd:")).count();
        }
    }
}
