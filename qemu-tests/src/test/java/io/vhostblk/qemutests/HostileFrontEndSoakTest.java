package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.bench.BenchException;
import io.vhostblk.bench.CrashWorkload;
import io.vhostblk.frontend.VhostUserFrontEnd;
import io.vhostblk.frontend.VhostUserRequest;
import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.GuestMemory;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.GuestRam;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A hostile front-end against a running vhost-blk server: thousands of random vhost-user messages
 * (well-formed requests with hostile values, and raw junk) in random orders, random memory tables
 * (regions larger than their memfd, huge sizes and offsets), random ring contents with kicks, and
 * replies never read. Between the hostile sessions an honest front-end writes every block of a
 * region, flushes and reads it all back; at the end the server must still be running, no queue
 * may have died, and it must stop cleanly. {@code -Dvhostblk.soak.sessions=N} (default 150) and
 * {@code -Dvhostblk.soak.seed=S}.
 */
class HostileFrontEndSoakTest {
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final int SESSIONS = Integer.getInteger("vhostblk.soak.sessions", 150);
    private static final long SEED = Long.getLong("vhostblk.soak.seed", 20261130);
    private static final int HONEST_EVERY = 25;
    private static final long RAM = 1 << 20;
    private static final long DISK = 4L << 20;

    @Test
    void theServerSurvivesHostileFrontEndsAndServesTheNextHonestOne() throws Exception {
        Path runDir = TestDirs.fresh(TARGET.resolve("soak-runs").resolve("hostile-front-end"));
        Path image = TestDirs.sparseImage(runDir.resolve("disk.img"), DISK);
        SplittableRandom random = new SplittableRandom(SEED);
        CrashWorkload honest = new CrashWorkload(64, 4096, 8, 8, SEED);
        List<String> problems = new ArrayList<>();
        long messages = 0;
        try (SocketDir socketDir = SocketDir.create("vbs-");
             StorageBackend server = VhostBlkServer.start(new ExportSpec(image, DISK, 2, false, socketDir.resolve("blk.sock"),
                runDir.resolve("server.log"), List.of("--queue-size", "256")));
             GuestRam ram = GuestRam.memfd(0, new GuestRam.Region(0, RAM));
             EventFd kick = EventFd.create(true);
             EventFd call = EventFd.create(true)) {
            Hostile hostile = new Hostile(random, ram, kick, call);
            for (int session = 1; session <= SESSIONS; session++) {
                awaitIdle(runDir.resolve("server.log"), session - 1);
                messages += hostile.session(server.socket());
                if (session % HONEST_EVERY == 0 || session == SESSIONS) {
                    String problem = honestRoundTrip(honest, server.socket());
                    if (problem != null) {
                        problems.add("after hostile session " + session + ": " + problem);
                        break;
                    }
                }
            }
            String log = Logs.tail(runDir.resolve("server.log"), 100_000);
            if (log.contains("queue loop failed")) {
                problems.add("a queue loop died (see 'queue loop failed' in " + runDir.resolve("server.log") + ")");
            }
            StorageBackend.Exit exit = server.stop();
            if (!exit.clean()) {
                problems.add("the server must still run and exit 0 on SIGTERM, but it " + exit);
            }
            if (!problems.isEmpty()) {
                fail(problems.size() + " problem(s) after " + messages + " hostile messages (seed " + SEED + ")\n  - "
                        + String.join("\n  - ", problems) + "\n" + server.logTail(40));
            }
        }
        System.out.println("[soak] " + SESSIONS + " hostile sessions, " + messages + " messages, honest front-end served "
                + (SESSIONS / HONEST_EVERY) + "+ times (seed " + SEED + ")");
    }

    /**
     * Waits (bounded) until the server has ended {@code sessions} sessions, so the next connection
     * is not refused as a second front-end: it logs each connection and each reset at its end.
     */
    static void awaitIdle(Path log, int sessions) throws InterruptedException {
        for (int attempt = 0; attempt < 300; attempt++) {
            String text = Logs.tail(log, 1_000_000);
            if (count(text, "front-end reset the device") >= count(text, "front-end connected")) {
                return;
            }
            Thread.sleep(20);
        }
        fail("the server did not end session " + sessions + " within 6 s of the front-end hanging up");
    }

    /** Waits (bounded) until the server's log holds {@code what} at least {@code n} times. */
    static void awaitLogged(Path log, String what, int n) throws InterruptedException {
        for (int attempt = 0; attempt < 500; attempt++) {
            if (count(Logs.tail(log, 1_000_000), what) >= n) {
                return;
            }
            Thread.sleep(20);
        }
        fail("the server did not log '" + what + "' " + n + " times within 10 s");
    }

    private static int count(String text, String what) {
        int n = 0;
        for (int at = text.indexOf(what); at >= 0; at = text.indexOf(what, at + 1)) {
            n++;
        }
        return n;
    }

    /**
     * Writes and flushes every block, then reads all back, over one connection. The server takes the
     * next front-end once it has noticed the last one hang up, so a refused connection is tried
     * again (a bounded number of times).
     */
    static String honestRoundTrip(CrashWorkload honest, Path socket) throws InterruptedException {
        BenchException last = null;
        for (int attempt = 0; attempt < 100; attempt++) {
            try (CrashWorkload.Run run = honest.connect(socket)) {
                run.prefill();
                List<String> violations = run.verify();
                return violations.isEmpty() ? null : "the honest front-end read back wrong data: " + violations.subList(0, Math.min(5, violations.size()));
            } catch (BenchException e) {
                last = e;
                Thread.sleep(100);
            }
        }
        return "the honest front-end was not served: " + last.getMessage();
    }

    /** Random vhost-user traffic. */
    private static final class Hostile {
        private final SplittableRandom random;
        private final GuestRam ram;
        private final EventFd kick;
        private final EventFd call;
        private final GuestMemory.RegionSpec region;
        private final SplitRingDriver[] rings;
        private final MemorySegment ringArea;
        private final long dataGpa;

        Hostile(SplittableRandom random, GuestRam ram, EventFd kick, EventFd call) throws Exception {
            this.random = random;
            this.ram = ram;
            this.kick = kick;
            this.call = call;
            this.region = ram.memory().regions().get(0);
            this.rings = new SplitRingDriver[] {new SplitRingDriver(ram, 256), new SplitRingDriver(ram, 256)};
            long start = rings[0].descGpa();
            this.ringArea = ram.at(start, rings[1].usedGpa() + 6 + 8 * 256 - start);
            this.dataGpa = ram.alloc(64 * 1024, 4096); // buffers the hostile descriptors may point at
        }

        /**
         * One connection's worth: usually an honest set-up (to some random step) first, so the
         * hostile part reaches running queues; returns how many messages went out before the
         * server hung up.
         */
        int session(Path socket) {
            int sent = 0;
            try (VhostUserFrontEnd fe = VhostUserFrontEnd.connect(socket)) {
                sent += honestSetUp(fe, random.nextInt(4) == 0 ? 0 : 1 + random.nextInt(6));
                int count = 1 + random.nextInt(40);
                for (int i = 0; i < count; i++, sent++) {
                    send(fe);
                }
            } catch (IOException | io.vhostblk.frontend.VhostUserException serverHungUp) {
                // A malformed message costs the connection; that is the point.
            }
            return sent;
        }

        /** QEMU's order, up to {@code steps}: features, protocol features, memory table, both rings. */
        private int honestSetUp(VhostUserFrontEnd fe, int steps) throws IOException, io.vhostblk.frontend.VhostUserException {
            if (steps == 0) {
                return 0;
            }
            fe.setOwner();
            long features = fe.getFeatures();
            fe.setFeatures(features);
            if (steps == 1) {
                return 3;
            }
            fe.setProtocolFeatures(fe.getProtocolFeatures());
            if (steps == 2) {
                return 5;
            }
            fe.send(VhostUserRequest.SET_MEM_TABLE, false, honestMemTable(), ram.fd(0));
            int sent = 6;
            ringArea.fill((byte) 0);
            for (SplitRingDriver r : rings) {
                r.setAvailIdx(0);
                r.setUsedIdx(0);
            }
            for (int q = 0; q < 2 && steps > 3; q++) {
                fe.send(VhostUserRequest.SET_VRING_NUM, false, state(q, 256));
                fe.send(VhostUserRequest.SET_VRING_BASE, false, state(q, 0));
                fe.send(VhostUserRequest.SET_VRING_ADDR, false, honestAddress(q));
                fe.send(VhostUserRequest.SET_VRING_KICK, false, u64(q), kick.fd());
                fe.send(VhostUserRequest.SET_VRING_CALL, false, u64(q), call.fd());
                sent += 5;
                if (steps > 4) {
                    fe.send(VhostUserRequest.SET_VRING_ENABLE, false, state(q, 1));
                    sent++;
                }
            }
            return sent;
        }

        private byte[] honestMemTable() {
            return ByteBuffer.allocate(8 + 32).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(0)
                    .putLong(region.guestPhysAddr()).putLong(region.size()).putLong(region.userAddr()).putLong(0).array();
        }

        private byte[] honestAddress(int q) {
            SplitRingDriver r = rings[q];
            return ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putInt(q).putInt(0)
                    .putLong(GuestRam.userAddr(r.descGpa())).putLong(GuestRam.userAddr(r.usedGpa()))
                    .putLong(GuestRam.userAddr(r.availGpa())).putLong(0).array();
        }

        private void send(VhostUserFrontEnd fe) throws IOException {
            int q = random.nextInt(8) == 0 ? random.nextInt() : random.nextInt(2);
            switch (random.nextInt(16)) {
                case 0 -> fe.send(VhostUserRequest.SET_OWNER, false, new byte[0]);
                case 1 -> fe.send(VhostUserRequest.GET_FEATURES, random.nextBoolean(), new byte[0]);
                case 2 -> fe.send(VhostUserRequest.SET_FEATURES, random.nextBoolean(), u64(random.nextBoolean() ? random.nextLong() : (1L << 32) | (1L << 30)));
                case 3 -> fe.send(VhostUserRequest.SET_PROTOCOL_FEATURES, false, u64(random.nextLong()));
                case 4 -> fe.send(VhostUserRequest.SET_MEM_TABLE, random.nextBoolean(), memTable(), ram.fd(0));
                case 5 -> fe.send(VhostUserRequest.SET_VRING_NUM, false, state(q, random.nextBoolean() ? 256 : random.nextInt()));
                case 6 -> fe.send(VhostUserRequest.SET_VRING_ADDR, false, address(q));
                case 7 -> fe.send(VhostUserRequest.SET_VRING_BASE, false, state(q, random.nextBoolean() ? 0 : random.nextInt()));
                case 8 -> {
                    boolean noFd = random.nextInt(4) == 0;
                    fe.send(VhostUserRequest.SET_VRING_KICK, false, u64((q & 0xffL) | (noFd ? 0x100 : 0)), noFd ? new int[0] : new int[] {kick.fd()});
                }
                case 9 -> fe.send(VhostUserRequest.SET_VRING_CALL, false, u64(q & 0xffL), call.fd());
                case 10 -> fe.send(VhostUserRequest.SET_VRING_ENABLE, false, state(q, random.nextInt(3)));
                case 11 -> fe.send(VhostUserRequest.GET_VRING_BASE, false, state(q, 0));
                case 12 -> fe.send(VhostUserRequest.GET_CONFIG, false, config());
                case 13 -> {
                    if (random.nextBoolean()) {
                        plausibleRequests(rings[random.nextInt(2)]);
                        kick.signal();
                        return;
                    }
                    // The guest's side: whatever bytes in the rings, then a kick.
                    byte[] junk = new byte[(int) ringArea.byteSize()];
                    random.nextBytes(junk);
                    if (random.nextBoolean()) {
                        ringArea.copyFrom(MemorySegment.ofArray(junk));
                    } else {
                        ringArea.asSlice(random.nextLong(ringArea.byteSize() - 64), 64).copyFrom(MemorySegment.ofArray(junk).asSlice(0, 64));
                    }
                    kick.signal();
                }
                case 14 -> raw(fe);
                default -> fe.send(VhostUserRequest.values()[random.nextInt(VhostUserRequest.values().length)], random.nextBoolean(),
                        bytes(random.nextInt(4) == 0 ? random.nextInt(300) : random.nextInt(16)));
            }
        }

        /**
         * A guest's ring with a few new heads over random descriptors (mostly into the data buffers,
         * whose first bytes look like request headers): the request decoding path, not just the ring checks.
         */
        private void plausibleRequests(SplitRingDriver r) {
            for (int i = 0; i < 256; i++) {
                long addr = random.nextInt(8) == 0 ? random.nextLong() : dataGpa + random.nextInt(64 * 1024 - 4096);
                int len = random.nextInt(8) == 0 ? random.nextInt() : random.nextInt(9000);
                int flags = random.nextInt(8) == 0 ? random.nextInt(0x10000) : random.nextInt(8);
                r.writeDescriptor(i, addr, len, flags, random.nextInt(8) == 0 ? random.nextInt(0x10000) : random.nextInt(256));
            }
            int[] types = {0, 1, 4, 8, 11, 13, 99};
            for (int h = 0; h < 16; h++) {
                ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
                b.putInt(types[random.nextInt(types.length)]).putInt(0).putLong(random.nextInt(4) == 0 ? random.nextLong() : random.nextInt(8192));
                ram.at(dataGpa + random.nextInt(64 * 1024 - 16) & ~15L, 16).copyFrom(MemorySegment.ofArray(b.array()));
            }
            int heads = 1 + random.nextInt(8);
            for (int i = 0; i < heads; i++) {
                r.offer(random.nextInt(256));
            }
            r.publish();
        }

        /** A header with any code, flags and size, and a payload that may not match it. */
        private void raw(VhostUserFrontEnd fe) throws IOException {
            int declared = random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(300);
            int actual = random.nextBoolean() ? Math.max(0, Math.min(declared, 300)) : random.nextInt(300);
            ByteBuffer b = ByteBuffer.allocate(12 + actual).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(random.nextInt(60)).putInt(random.nextBoolean() ? 1 : random.nextInt()).putInt(declared);
            byte[] payload = bytes(actual);
            b.put(payload);
            try (Arena arena = Arena.ofConfined()) {
                fe.channel().socket().send(arena.allocateFrom(java.lang.foreign.ValueLayout.JAVA_BYTE, b.array()));
            }
        }

        private byte[] memTable() {
            int n = random.nextInt(6) == 0 ? random.nextInt(12) : 1;
            ByteBuffer b = ByteBuffer.allocate(8 + 32 * Math.max(n, 1)).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(n).putInt(0);
            for (int i = 0; i < Math.max(n, 1); i++) {
                boolean honest = random.nextInt(3) > 0;
                long size = honest ? region.size() : new long[] {0, 4096, 2 * RAM, 1L << 40, -1, random.nextLong()}[random.nextInt(6)];
                long offset = honest ? 0 : new long[] {0, 4096, RAM - 4096, RAM, 1L << 40, random.nextLong()}[random.nextInt(6)];
                long gpa = honest ? region.guestPhysAddr() : random.nextLong();
                long uva = honest ? region.userAddr() : random.nextLong();
                b.putLong(gpa).putLong(size).putLong(uva).putLong(offset);
            }
            return b.array();
        }

        private byte[] address(int q) {
            SplitRingDriver r = rings[q & 1];
            boolean honest = random.nextInt(3) > 0;
            ByteBuffer b = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(q).putInt(random.nextInt(8) == 0 ? random.nextInt() : 0);
            b.putLong(honest ? GuestRam.userAddr(r.descGpa()) : random.nextLong());
            b.putLong(honest ? GuestRam.userAddr(r.usedGpa()) : random.nextLong());
            b.putLong(honest ? GuestRam.userAddr(r.availGpa()) : random.nextLong());
            b.putLong(random.nextLong());
            return b.array();
        }

        private byte[] config() {
            ByteBuffer b = ByteBuffer.allocate(12 + 60).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(64));
            b.putInt(random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(64));
            b.putInt(random.nextInt(3));
            return b.array();
        }

        private static byte[] state(int index, int num) {
            return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(index).putInt(num).array();
        }

        private static byte[] u64(long v) {
            return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
        }

        private byte[] bytes(int n) {
            byte[] b = new byte[n];
            random.nextBytes(b);
            return b;
        }
    }
}
