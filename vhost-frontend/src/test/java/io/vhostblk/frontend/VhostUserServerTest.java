package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.UnixSocket;
import io.vhostblk.virtio.GuestMemory.RegionSpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Drives a real {@link VhostUserServer} over a real Unix socket with {@link VhostUserFrontEnd}. */
class VhostUserServerTest {
    private static final String DEVICE = "disk-test7";
    private static final long REPLY_ACK = 1L << VhostUserProtocol.PROTOCOL_F_REPLY_ACK;
    private static final long CONFIG = 1L << VhostUserProtocol.PROTOCOL_F_CONFIG;
    /** Where the "front-end process" has guest RAM mapped; any value works, it only has to be consistent. */
    private static final long UVA = 0x7f00_0000_0000L;
    private static final long RAM_SIZE = 1 << 16;

    @TempDir
    Path dir;
    private Path socketPath;
    private FakeDevice device;
    private VhostUserServer server;
    private final BlockingQueue<LogRecord> warnings = new LinkedBlockingQueue<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord r) {
            if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
                warnings.add(r);
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };
    private final Logger serverLogger = Logger.getLogger(VhostUserServer.class.getName());
    private final Logger sessionLogger = Logger.getLogger(VhostUserSession.class.getName());

    @BeforeEach
    void startServer() throws IOException {
        serverLogger.addHandler(capture);
        sessionLogger.addHandler(capture);
        socketPath = dir.resolve("vhost.sock");
        device = new FakeDevice();
        server = VhostUserServer.start(DEVICE, socketPath, true, device);
    }

    @AfterEach
    void stopServer() throws IOException {
        server.close();
        serverLogger.removeHandler(capture);
        sessionLogger.removeHandler(capture);
        assertFalse(Files.exists(socketPath), "socket file removed on close");
    }

    private VhostUserFrontEnd connect() throws IOException {
        return VhostUserFrontEnd.connect(socketPath);
    }

    private String awaitWarning() throws InterruptedException {
        LogRecord r = warnings.poll(5, TimeUnit.SECONDS);
        assertNotNull(r, "a warning was logged");
        return r.getMessage();
    }

    private void awaitSessionsEnded(long n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (server.sessionsEnded() < n) {
            if (System.nanoTime() > deadline) {
                fail("session " + n + " did not end");
            }
            Thread.sleep(5);
        }
    }

    private static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    // ---- negotiation ------------------------------------------------------------------------

    @Test
    void negotiatesFeaturesProtocolFeaturesAndQueueCount() throws Exception {
        try (VhostUserFrontEnd fe = connect()) {
            long features = fe.getFeatures();
            assertEquals(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES | VhostUserProtocol.F_LOG_ALL, features);
            long protocol = fe.getProtocolFeatures();
            assertEquals((1L << VhostUserProtocol.PROTOCOL_F_MQ) | REPLY_ACK | CONFIG
                    | (1L << VhostUserProtocol.PROTOCOL_F_RESET_DEVICE)
                    | (1L << VhostUserProtocol.PROTOCOL_F_INFLIGHT_SHMFD)
                    | (1L << VhostUserProtocol.PROTOCOL_F_LOG_SHMFD)
                    | (1L << VhostUserProtocol.PROTOCOL_F_CONFIGURE_MEM_SLOTS)
                    | (1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ), protocol);
            fe.setProtocolFeatures(protocol);
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM));
            fe.setOwner();
            fe.setFeatures(features);
            // The ack proves SET_FEATURES was handled before we look at the device.
            fe.useReplyAck(true);
            fe.setOwner();
            assertEquals(features, device.ackedFeatures);
        }
    }

    @Test
    void getConfigReturnsTheRequestedWindowZeroPastOurFieldsAndEmptyReplyPastTheLimit() throws Exception {
        try (VhostUserFrontEnd fe = connect()) {
            fe.setProtocolFeatures(CONFIG);
            assertArrayEquals(Arrays.copyOfRange(device.config, 4, 12), fe.getConfig(4, 8));
            assertArrayEquals(device.config, fe.getConfig(0, 60));
            // A newer front-end's larger structure: our fields, then zeros (not an error reply).
            assertArrayEquals(Arrays.copyOf(device.config, 96), fe.getConfig(0, 96));
            assertArrayEquals(Arrays.copyOfRange(device.config, 56, 64), fe.getConfig(56, 8));
            assertArrayEquals(new byte[16], fe.getConfig(200, 16), "wholly past our fields: zeros");
            assertNull(fe.getConfig(250, 8), "window past VHOST_USER_MAX_CONFIG_SIZE gets the spec's empty error reply");
            assertNull(fe.getConfig(-4, 8), "negative offset gets the empty error reply");
            // Still connected and serving.
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM));
        }
    }

    @Test
    void replyAckReportsSuccessAndDeviceRefusalWithoutDroppingTheConnection() throws Exception {
        try (VhostUserFrontEnd fe = connect()) {
            fe.setProtocolFeatures(REPLY_ACK | CONFIG);
            fe.useReplyAck(true);
            fe.setVringNum(0, 256);
            fe.setConfig(20, new byte[] {1});
            assertEquals(List.of("20:1"), device.configWrites);
            VhostUserException e = assertThrows(VhostUserException.class, () -> fe.setConfig(0, new byte[] {1}));
            assertTrue(e.getMessage().contains("status 1"), e.getMessage());
            assertTrue(awaitWarning().contains("device " + DEVICE));
            // GET_* requests reply with their own body even when NEED_REPLY is set.
            fe.send(VhostUserRequest.GET_QUEUE_NUM, true, new byte[0]);
            VhostUserMessage reply = fe.receiveReply(VhostUserRequest.GET_QUEUE_NUM);
            assertEquals(2, reply.payload().getLong());
            fe.setVringNum(1, 128);
        }
    }

    // ---- rings ------------------------------------------------------------------------------

    /** Guest RAM as a memfd the "front-end" shares, mapped here too so the test can play the driver. */
    private static final class GuestRam implements AutoCloseable {
        final int fd;
        final MemorySegment mem;

        GuestRam() throws IOException {
            fd = (int) Libc.check("memfd_create", Libc.memfdCreate("guest-ram", Libc.MFD_CLOEXEC), "");
            Libc.check("ftruncate", Libc.ftruncate(fd, RAM_SIZE), "");
            mem = Libc.mmap(RAM_SIZE, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        }

        MemoryTable table() {
            return new MemoryTable(List.of(new RegionSpec(0, RAM_SIZE, UVA, 0)));
        }

        /** Makes {@code count} chains available (heads 0..count-1) on a ring whose avail ring is at {@code availOffset}. */
        void makeAvailable(long availOffset, int count) {
            for (int i = 0; i < count; i++) {
                mem.set(ValueLayout.JAVA_SHORT, availOffset + 4 + 2L * i, (short) i);
            }
            mem.set(ValueLayout.JAVA_SHORT, availOffset + 2, (short) count);
        }

        @Override
        public void close() {
            Libc.munmap(mem);
            Libc.close(fd);
        }
    }

    private static VringAddress ringAt(int index, long base) {
        return new VringAddress(index, 0, UVA + base, UVA + base + 0x2000, UVA + base + 0x1000, 0);
    }

    @Test
    void legacyRingStartsOnKickRestartsOnCallAndStopsOnGetVringBase() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam();
             EventFd kick = EventFd.create(true); EventFd call = EventFd.create(true)) {
            fe.setFeatures(FakeDevice.FEATURES);
            fe.setMemTable(ram.table(), ram.fd);
            fe.setVringNum(1, 64);
            fe.setVringBase(1, 0);
            fe.setVringAddr(ringAt(1, 0x4000));
            fe.setVringKick(1, kick.fd());
            FakeDevice.Started s = device.awaitStart();
            assertEquals(1, s.index());
            assertNull(s.call());
            assertEquals(64, s.queue().size());
            // The kick the device got is the front-end's eventfd.
            assertEquals(0, kick.signal());
            assertEquals(1, s.kick().drain());

            fe.setVringCall(1, call.fd());
            assertEquals(1, device.awaitStop());
            FakeDevice.Started again = device.awaitStart();
            assertNotNull(again.call());
            // A starting ring signals its call fd once, for a guest that missed a predecessor's interrupt.
            assertEquals(1, call.drain());
            again.call().signal();
            assertEquals(1, call.drain());

            ram.makeAvailable(0x5000, 3);
            assertEquals(3, fe.getVringBase(1));
            assertEquals(1, device.awaitStop());
            // Stopped rings stay stopped: nothing restarts them until a new kick fd.
            fe.setVringNum(1, 64);
            assertNull(device.started.poll(100, TimeUnit.MILLISECONDS));
        }
    }

    @Test
    void withProtocolFeaturesRingWaitsForEnableAndFollowsMemoryTableChanges() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam(); GuestRam ram2 = new GuestRam();
             EventFd kick = EventFd.create(true)) {
            fe.setProtocolFeatures(REPLY_ACK);
            fe.useReplyAck(true);
            fe.setFeatures(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES);
            fe.setMemTable(ram.table(), ram.fd);
            ram.makeAvailable(0x1000, 7);
            fe.setVringNum(0, 32);
            fe.setVringBase(0, 7);
            fe.setVringAddr(ringAt(0, 0));
            fe.setVringKick(0, kick.fd());
            assertNull(device.started.poll(100, TimeUnit.MILLISECONDS), "disabled ring must not start");
            fe.setVringEnable(0, true);
            FakeDevice.Started s = device.awaitStart();
            assertEquals(0, s.index());
            assertEquals(7, s.queue().nextAvail());

            // A new memory table: the ring is stopped, the table swapped, the ring restarted where it was.
            ram2.makeAvailable(0x1000, 9);
            fe.setMemTable(ram2.table(), ram2.fd);
            assertEquals(0, device.awaitStop());
            FakeDevice.Started moved = device.awaitStart();
            assertEquals(7, moved.queue().nextAvail());
            assertEquals(9, fe.getVringBase(0));

            fe.setVringEnable(0, false);
            assertNull(device.started.poll(100, TimeUnit.MILLISECONDS));
        }
        awaitSessionsEnded(1);
        assertEquals(1, device.resets.get(), "disconnect resets the device");
    }

    private static final long MEM_SLOTS = 1L << VhostUserProtocol.PROTOCOL_F_CONFIGURE_MEM_SLOTS;

    private static void addMemReg(VhostUserFrontEnd fe, RegionSpec r, int fd) throws Exception {
        fe.set(VhostUserRequest.ADD_MEM_REG, MemoryTable.encodeSingle(r), fd);
    }

    private static void remMemReg(VhostUserFrontEnd fe, RegionSpec r) throws Exception {
        fe.set(VhostUserRequest.REM_MEM_REG, MemoryTable.encodeSingle(r));
    }

    @Test
    void memorySlotsAddAndRemoveRegionsUnderARunningRingQuiescingItEachTime() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam(); GuestRam hotplugged = new GuestRam();
             EventFd kick = EventFd.create(true)) {
            assertTrue((fe.getProtocolFeatures() & MEM_SLOTS) != 0, "CONFIGURE_MEM_SLOTS offered");
            fe.setProtocolFeatures(REPLY_ACK | MEM_SLOTS);
            fe.useReplyAck(true);
            assertEquals(509, fe.getU64(VhostUserRequest.GET_MAX_MEM_SLOTS));
            fe.setFeatures(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES);
            RegionSpec base = ram.table().regions().getFirst();
            addMemReg(fe, base, ram.fd);
            ram.makeAvailable(0x1000, 3);
            fe.setVringNum(0, 32);
            fe.setVringAddr(ringAt(0, 0));
            fe.setVringKick(0, kick.fd());
            fe.setVringEnable(0, true);
            FakeDevice.Started first = device.awaitStart();
            assertEquals(1, first.queue().memory().regionCount());

            // Hotplug: the ring is parked (its in-flight work finished), moved onto the larger table, resumed.
            RegionSpec dimm = new RegionSpec(1L << 32, RAM_SIZE, UVA + (1L << 30), 0);
            addMemReg(fe, dimm, hotplugged.fd);
            assertEquals(0, device.awaitStop());
            FakeDevice.Started grown = device.awaitStart();
            assertEquals(3, grown.queue().nextAvail(), "resumed where it stopped");
            hotplugged.mem.set(ValueLayout.JAVA_LONG, 8, 0x600dL);
            MemorySegment seen = grown.queue().memory().guestRange((1L << 32) + 8, 8);
            assertEquals(0x600dL, seen.get(ValueLayout.JAVA_LONG, 0), "the new region is the front-end's memory");

            // Hostile: an overlapping region, a region nobody added, no descriptor: each refused, the
            // session and the ring live on.
            VhostUserException overlap = assertThrows(VhostUserException.class, () -> addMemReg(fe,
                    new RegionSpec(RAM_SIZE / 2, RAM_SIZE, UVA + (2L << 30), 0), hotplugged.fd));
            assertTrue(overlap.getMessage().contains("status 1"), overlap.getMessage());
            assertTrue(awaitWarning().contains("regions overlap"));
            VhostUserException unknown = assertThrows(VhostUserException.class,
                    () -> remMemReg(fe, new RegionSpec(2L << 32, RAM_SIZE, UVA, 0)));
            assertTrue(unknown.getMessage().contains("status 1"), unknown.getMessage());
            assertTrue(awaitWarning().contains("no region matches"));
            assertTrue(device.stopped.isEmpty(), "refused changes did not disturb the ring");

            // Unplug: parked, the region unmapped, resumed on the base region alone.
            remMemReg(fe, dimm);
            assertEquals(0, device.awaitStop());
            FakeDevice.Started shrunk = device.awaitStart();
            assertEquals(1, shrunk.queue().memory().regionCount());
            assertThrows(IllegalStateException.class, () -> seen.get(ValueLayout.JAVA_LONG, 0),
                    "the old view of the removed region is closed");
            assertEquals(3, fe.getVringBase(0));
        }
    }

    @Test
    void memorySlotsRefuseTheSlotPastTheLimitAndMalformedRequests() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam()) {
            fe.setProtocolFeatures(REPLY_ACK | MEM_SLOTS);
            fe.useReplyAck(true);
            long page = 4096;
            for (int i = 0; i < VhostUserSession.MAX_MEM_SLOTS; i++) {
                addMemReg(fe, new RegionSpec(i * page, page, UVA + i * page, 0), ram.fd);
            }
            int slot = VhostUserSession.MAX_MEM_SLOTS;
            VhostUserException e = assertThrows(VhostUserException.class,
                    () -> addMemReg(fe, new RegionSpec(slot * page, page, UVA + slot * page, 0), ram.fd));
            assertTrue(e.getMessage().contains("status 1"), e.getMessage());
            assertTrue(awaitWarning().contains("at most 509 allowed"));
            remMemReg(fe, new RegionSpec(0, page, UVA, 0));
            addMemReg(fe, new RegionSpec(slot * page, page, UVA + slot * page, 0), ram.fd);
        }
        awaitSessionsEnded(1);
        assertRejected("VHOST_USER_ADD_MEM_REG: carries 0 file descriptors, expected 1", fe -> {
            fe.setProtocolFeatures(MEM_SLOTS);
            fe.send(VhostUserRequest.ADD_MEM_REG, false, MemoryTable.encodeSingle(new RegionSpec(0, 4096, UVA, 0)));
        });
        assertRejected("VHOST_USER_ADD_MEM_REG: protocol feature CONFIGURE_MEM_SLOTS was not negotiated",
                fe -> fe.send(VhostUserRequest.ADD_MEM_REG, false, new byte[40]));
        assertRejected("VHOST_USER_REM_MEM_REG: payload is 32 bytes, expected 40", fe -> {
            fe.setProtocolFeatures(MEM_SLOTS);
            fe.send(VhostUserRequest.REM_MEM_REG, false, new byte[32]);
        });
    }

    @Test
    void backendChannelCarriesConfigChangesUntilTheSessionEnds() throws Exception {
        long backendReq = 1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ;
        UnixSocket[] pair = UnixSocket.pair();
        try (VhostUserChannel frontEndSide = new VhostUserChannel(pair[1])) {
            try (VhostUserFrontEnd fe = connect()) {
                fe.setProtocolFeatures(REPLY_ACK | backendReq);
                fe.useReplyAck(true);
                fe.set(VhostUserRequest.SET_BACKEND_REQ_FD, new byte[0], pair[0].fd());
                pair[0].close();
                BackendChannel backend = device.backends.poll(5, TimeUnit.SECONDS).orElseThrow();
                var told = java.util.concurrent.CompletableFuture.supplyAsync(backend::configChanged);
                VhostUserMessage notice = frontEndSide.receive(false);
                assertEquals(BackendChannel.CONFIG_CHANGE_MSG, notice.code());
                assertTrue(notice.needsReply(), "REPLY_ACK negotiated: the notice asks for an answer");
                frontEndSide.send(notice.reply(VhostUserMessage.u64(0)));
                assertEquals("guest notified", told.get(5, TimeUnit.SECONDS));
            }
            assertTrue(device.backends.poll(5, TimeUnit.SECONDS).isEmpty(), "the session's end withdraws the channel");
            assertNull(frontEndSide.receive(false), "and closes it");
        }
        // The connection itself is closed after the session: let that happen before counting descriptors.
        awaitSessionsEnded(1);
        assertRejected("VHOST_USER_SET_BACKEND_REQ_FD: carries 0 file descriptors, expected 1", fe -> {
            fe.setProtocolFeatures(1L << VhostUserProtocol.PROTOCOL_F_BACKEND_REQ);
            fe.send(VhostUserRequest.SET_BACKEND_REQ_FD, false, new byte[0]);
        });
        try (EventFd e = EventFd.create(true)) {
            assertRejected("VHOST_USER_SET_BACKEND_REQ_FD: protocol feature BACKEND_REQ was not negotiated",
                    fe -> fe.send(VhostUserRequest.SET_BACKEND_REQ_FD, false, new byte[0], e.fd()));
        }
    }

    @Test
    void ringOutsideGuestMemoryFailsToStartAndIsReportedThroughReplyAck() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam(); EventFd kick = EventFd.create(true)) {
            fe.setProtocolFeatures(REPLY_ACK);
            fe.useReplyAck(true);
            fe.setFeatures(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES);
            fe.setMemTable(ram.table(), ram.fd);
            fe.setVringNum(0, 16);
            fe.setVringAddr(new VringAddress(0, 0, UVA + RAM_SIZE, UVA + 0x2000, UVA + 0x1000, 0));
            fe.setVringKick(0, kick.fd());
            VhostUserException e = assertThrows(VhostUserException.class, () -> fe.setVringEnable(0, true));
            assertTrue(e.getMessage().contains("VHOST_USER_SET_VRING_ENABLE failed"), e.getMessage());
            String warning = awaitWarning();
            assertTrue(warning.contains("vring 0 could not start") && warning.contains("outside guest memory"), warning);
            assertTrue(device.started.isEmpty());
            // Fixing the address lets it start: the connection survived.
            fe.setVringAddr(ringAt(0, 0));
            assertEquals(0, device.awaitStart().index());
        }
    }

    @Test
    void resetDeviceStopsRingsAndForgetsThem() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam(); EventFd kick = EventFd.create(true)) {
            fe.setProtocolFeatures(REPLY_ACK | (1L << VhostUserProtocol.PROTOCOL_F_RESET_DEVICE));
            fe.useReplyAck(true);
            fe.setFeatures(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES);
            fe.setMemTable(ram.table(), ram.fd);
            fe.setVringNum(1, 16);
            fe.setVringAddr(ringAt(1, 0));
            fe.setVringKick(1, kick.fd());
            fe.setVringEnable(1, true);
            device.awaitStart();
            fe.set(VhostUserRequest.RESET_DEVICE, new byte[0]);
            assertEquals(1, device.awaitStop());
            assertEquals(1, device.resets.get());
            // The ring forgot its configuration: enabling it again starts nothing.
            fe.setFeatures(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES);
            fe.setVringEnable(1, true);
            assertNull(device.started.poll(100, TimeUnit.MILLISECONDS));
        }
    }

    @Test
    void disconnectStopsRunningQueuesAndResetsTheDevice() throws Exception {
        try (VhostUserFrontEnd fe = connect(); GuestRam ram = new GuestRam(); EventFd kick = EventFd.create(true)) {
            fe.setFeatures(FakeDevice.FEATURES);
            fe.setMemTable(ram.table(), ram.fd);
            fe.setVringNum(0, 16);
            fe.setVringAddr(ringAt(0, 0));
            fe.setVringKick(0, kick.fd());
            device.awaitStart();
        }
        assertEquals(0, device.awaitStop());
        awaitSessionsEnded(1);
        assertEquals(1, device.resets.get());
        try (VhostUserFrontEnd fe = connect()) {
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM), "reconnect works");
        }
    }

    // ---- hostile front-ends -----------------------------------------------------------------

    /** Sends something that breaks the protocol and checks the connection is dropped, the reason logged, no fd leaked, and the server still serves. */
    private void assertRejected(String reasonFragment, FrontEndAction action) throws Exception {
        long before = openFds();
        long ended = server.sessionsEnded();
        try (VhostUserFrontEnd fe = connect()) {
            try {
                action.run(fe);
            } catch (IOException hungUp) {
                // A request with a reply sees the hang-up itself.
            }
            // The back-end hangs up: the next reply never comes.
            assertThrows(IOException.class, () -> fe.getFeatures());
        }
        String reason = awaitWarning();
        assertTrue(reason.contains("device " + DEVICE), reason);
        assertTrue(reason.contains(reasonFragment), "expected '" + reasonFragment + "' in: " + reason);
        awaitSessionsEnded(ended + 1);
        assertEquals(before, openFds(), "no descriptor leaked");
        try (VhostUserFrontEnd fe = connect()) {
            assertEquals(FakeDevice.FEATURES | VhostUserProtocol.F_PROTOCOL_FEATURES | VhostUserProtocol.F_LOG_ALL, fe.getFeatures());
        }
        // Let the server see that connection go too, so the next check starts from a quiet baseline.
        awaitSessionsEnded(ended + 2);
    }

    @FunctionalInterface
    private interface FrontEndAction {
        void run(VhostUserFrontEnd fe) throws Exception;
    }

    @Test
    void rejectsWrongPayloadSize() throws Exception {
        assertRejected("VHOST_USER_SET_VRING_NUM: payload is 4 bytes, expected 8",
                fe -> fe.send(VhostUserRequest.SET_VRING_NUM, false, new byte[4]));
        assertRejected("VHOST_USER_SET_VRING_ADDR: payload is 8 bytes, expected 40",
                fe -> fe.send(VhostUserRequest.SET_VRING_ADDR, false, new byte[8]));
        assertRejected("VHOST_USER_GET_FEATURES: payload is 8 bytes, expected 0",
                fe -> fe.send(VhostUserRequest.GET_FEATURES, false, new byte[8]));
    }

    @Test
    void rejectsVringIndexOutOfRangeAndBadNumAndBase() throws Exception {
        assertRejected("vring index 2 out of range", fe -> fe.setVringNum(2, 64));
        assertRejected("num 100 is not a power of two", fe -> fe.setVringNum(0, 100));
        assertRejected("num 65536 is not a power of two", fe -> fe.setVringNum(0, 65536));
        assertRejected("num 0 is not a power of two", fe -> fe.setVringNum(0, 0));
        assertRejected("base 65536 exceeds 65535", fe -> fe.setVringBase(0, 65536));
        assertRejected("vring index 5 out of range", fe -> fe.setVringKick(5, -1));
    }

    @Test
    void rejectsOversizePayloadUnknownRequestAndBadFlags() throws Exception {
        assertRejected("payload size 5000 exceeds the maximum of 4096",
                fe -> fe.send(VhostUserRequest.SET_CONFIG, false, new byte[5000]));
        assertRejected("unknown request 99", fe -> fe.channel().send(new VhostUserMessage(99, 1, new byte[0], new int[0])));
        assertRejected("protocol version 2", fe -> fe.channel().send(new VhostUserMessage(1, 2, new byte[0], new int[0])));
        assertRejected("REPLY flag is set on a request",
                fe -> fe.channel().send(new VhostUserMessage(1, 5, new byte[0], new int[0])));
    }

    @Test
    void rejectsTruncatedHeader() throws Exception {
        long ended = server.sessionsEnded();
        try (UnixSocket raw = UnixSocket.connect(socketPath); Arena arena = Arena.ofConfined()) {
            raw.send(arena.allocate(6));
            raw.shutdown();
            String reason = awaitWarning();
            assertTrue(reason.contains("truncated message header"), reason);
        }
        awaitSessionsEnded(ended + 1);
        try (VhostUserFrontEnd fe = connect()) {
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM));
        }
    }

    @Test
    void closesDescriptorsOnMessagesThatTakeNone() throws Exception {
        try (EventFd e = EventFd.create(true)) {
            assertRejected("VHOST_USER_SET_OWNER: carries 1 file descriptors, at most 0 allowed",
                    fe -> fe.send(VhostUserRequest.SET_OWNER, false, new byte[0], e.fd()));
            assertRejected("VHOST_USER_SET_VRING_KICK: carries 1 file descriptors, expected 0",
                    fe -> fe.send(VhostUserRequest.SET_VRING_KICK, false, VhostUserMessage.u64(0x100), e.fd()));
            assertRejected("VHOST_USER_SET_VRING_CALL: carries 2 file descriptors, at most 1 allowed",
                    fe -> fe.send(VhostUserRequest.SET_VRING_CALL, false, VhostUserMessage.u64(0), e.fd(), e.fd()));
            assertRejected("VHOST_USER_SET_VRING_KICK: carries 0 file descriptors, expected 1",
                    fe -> fe.send(VhostUserRequest.SET_VRING_KICK, false, VhostUserMessage.u64(0)));
            assertRejected("more than 8 file descriptors", fe -> {
                int[] nine = new int[9];
                Arrays.fill(nine, e.fd());
                fe.send(VhostUserRequest.SET_MEM_TABLE, false, new byte[8], nine);
            });
            assertRejected("reserved bits set", fe -> fe.send(VhostUserRequest.SET_VRING_CALL, false,
                    VhostUserMessage.u64(0x1_0000), e.fd()));
        }
    }

    @Test
    void rejectsInconsistentMemoryTablesWithoutLeakingTheirDescriptors() throws Exception {
        try (GuestRam ram = new GuestRam()) {
            MemoryTable two = new MemoryTable(List.of(new RegionSpec(0, RAM_SIZE, UVA, 0),
                    new RegionSpec(RAM_SIZE, RAM_SIZE, UVA + RAM_SIZE, 0)));
            assertRejected("VHOST_USER_SET_MEM_TABLE: carries 1 file descriptors, expected 2",
                    fe -> fe.setMemTable(two, ram.fd));
            assertRejected("nregions 9 not in 1..8", fe -> fe.send(VhostUserRequest.SET_MEM_TABLE, false,
                    VhostUserMessage.newPayload(8).putInt(9).putInt(0).array(), ram.fd));
            assertRejected("region 0 is invalid", fe -> fe.setMemTable(
                    new MemoryTable(List.of(new RegionSpec(0, 0, UVA, 0))), ram.fd));
        }
    }

    @Test
    void rejectsUnofferedFeaturesAndUnsupportedRequests() throws Exception {
        assertRejected("include bits not offered (0x1)", fe -> fe.send(VhostUserRequest.SET_FEATURES, false,
                VhostUserMessage.u64(FakeDevice.FEATURES | 1)));
        assertRejected("protocol features 0x10000 include bits not offered",
                fe -> fe.setProtocolFeatures(1L << VhostUserProtocol.PROTOCOL_F_STATUS));
        assertRejected("VHOST_USER_SET_LOG_BASE: protocol feature LOG_SHMFD was not negotiated",
                fe -> fe.send(VhostUserRequest.SET_LOG_BASE, false, new byte[16]));
        assertRejected("protocol feature CONFIG was not negotiated", fe -> fe.getConfig(0, 8));
        assertRejected("PROTOCOL_FEATURES was not negotiated", fe -> fe.setVringEnable(0, true));
        assertRejected("VHOST_USER_GET_INFLIGHT_FD: protocol feature INFLIGHT_SHMFD was not negotiated",
                fe -> fe.send(VhostUserRequest.GET_INFLIGHT_FD, false, new byte[24]));
        assertRejected("VHOST_USER_POSTCOPY_ADVISE: not supported",
                fe -> fe.send(VhostUserRequest.POSTCOPY_ADVISE, false, new byte[0]));
    }

    @Test
    void refusesASecondFrontEndWhileOneIsConnected() throws Exception {
        try (VhostUserFrontEnd first = connect()) {
            assertEquals(2, first.getU64(VhostUserRequest.GET_QUEUE_NUM));
            try (VhostUserFrontEnd second = connect()) {
                assertThrows(IOException.class, second::getFeatures);
            }
            assertTrue(awaitWarning().contains("refused a second front-end"));
            assertEquals(2, first.getU64(VhostUserRequest.GET_QUEUE_NUM), "the first is unaffected");
        }
    }

    @Test
    void aFrontEndThatClosesAndReconnectsAtOnceIsServedNotRefused() throws Exception {
        // Each round closes a session and connects again without waiting: the server may see
        // the old connection's end and the new connection in the same poll, and must serve the
        // new one once the old session has ended (bench and QEMU reconnects do this).
        for (int round = 0; round < 20; round++) {
            VhostUserFrontEnd fe = connect();
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM), "round " + round);
            fe.close();
        }
        try (VhostUserFrontEnd last = connect()) {
            assertEquals(2, last.getU64(VhostUserRequest.GET_QUEUE_NUM));
        }
        assertTrue(warnings.stream().noneMatch(r -> r.getMessage().contains("refused a second front-end")),
                "no reconnect was taken for a second front-end: " + warnings);
    }

    @Test
    void closeIsPromptEvenWithAFrontEndStuckMidMessage() throws Exception {
        try (GuestRam ram = new GuestRam(); EventFd kick = EventFd.create(true);
             VhostUserFrontEnd fe = connect(); Arena arena = Arena.ofConfined()) {
            fe.setFeatures(FakeDevice.FEATURES);
            fe.setMemTable(ram.table(), ram.fd);
            fe.setVringNum(0, 16);
            fe.setVringAddr(ringAt(0, 0));
            fe.setVringKick(0, kick.fd());
            device.awaitStart();
            fe.channel().socket().send(arena.allocate(5));
            Thread.sleep(50);
            // A close that waited for the rest of the message would never return: bound it for
            // liveness only (no speed is asserted).
            Thread closer = Thread.ofPlatform().start(() -> {
                try {
                    server.close();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            closer.join(TimeUnit.SECONDS.toMillis(60));
            assertFalse(closer.isAlive(), "close() is stuck behind the front-end's half-sent message");
            assertEquals(0, device.awaitStop());
            assertEquals(1, device.resets.get());
        }
    }
}
