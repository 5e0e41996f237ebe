package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.bench.CrashWorkload;
import io.vhostblk.frontend.VhostUserFrontEnd;
import io.vhostblk.frontend.VhostUserRequest;
import io.vhostblk.linux.UnixSocket;
import io.vhostblk.virtio.GuestRam;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A vhost-blk server process against front-ends that take more than their share: hundreds of
 * connections at once, one that floods requests and never reads a reply, and memory tables with
 * huge regions. Each must cost only that front-end: the server's descriptors and memory stay
 * bounded, and the next honest front-end is served.
 */
class ResourceLimitsTest {
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long DISK = 4L << 20;
    private static final int CONNECTIONS = 300;
    /** Far above what a healthy server holds (about 40 descriptors), far below one per connection. */
    private static final long MAX_SERVER_FDS = 150;
    /** A generous bound for a JVM serving one small disk; one buffer per flooded reply would break it. */
    private static final long MAX_SERVER_RSS_KIB = 1 << 20;

    @Test
    void greedyFrontEndsCostOnlyThemselves() throws Exception {
        Path runDir = TestDirs.fresh(TARGET.resolve("soak-runs").resolve("resource-limits"));
        Path image = TestDirs.sparseImage(runDir.resolve("disk.img"), DISK);
        Path log = runDir.resolve("server.log");
        List<String> problems = new ArrayList<>();
        CrashWorkload honest = new CrashWorkload(64, 4096, 8, 8, 5);
        try (SocketDir socketDir = SocketDir.create("vbl-");
             VhostBlkServer server = VhostBlkServer.start(new ExportSpec(image, DISK, 1, false, socketDir.resolve("blk.sock"), log));
             GuestRam ram = GuestRam.memfd(0, new GuestRam.Region(0, 1 << 20))) {
            // 1. Hundreds of connections at once: one is served, the others are refused and closed.
            List<UnixSocket> many = new ArrayList<>();
            try {
                for (int i = 0; i < CONNECTIONS; i++) {
                    many.add(UnixSocket.connect(server.socket()));
                }
                HostileFrontEndSoakTest.awaitLogged(log, "refused a second front-end", CONNECTIONS - 1);
                long fds = openFds(server.pid());
                if (fds > MAX_SERVER_FDS) {
                    problems.add(CONNECTIONS + " connections left the server holding " + fds + " descriptors");
                }
            } finally {
                many.forEach(UnixSocket::close);
            }
            HostileFrontEndSoakTest.awaitIdle(log, CONNECTIONS);
            check(problems, "after " + CONNECTIONS + " connections", HostileFrontEndSoakTest.honestRoundTrip(honest, server.socket()));

            // 2. A front-end that sends 20,000 requests and never reads a reply: the server blocks on
            //    that connection (its replies are not queued in memory), and so does the flood once the
            //    socket buffers are full; hanging up ends both.
            try (VhostUserFrontEnd flood = VhostUserFrontEnd.connect(server.socket())) {
                Thread sender = Thread.ofPlatform().name("flood").start(() -> {
                    try {
                        for (int i = 0; i < 20_000; i++) {
                            flood.send(VhostUserRequest.GET_FEATURES, false, new byte[0]);
                        }
                    } catch (IOException hungUp) {
                        // Ends the flood once the socket is shut down (or the server gives up on it).
                    }
                });
                sender.join(10_000);
                flood.channel().socket().shutdown();
                sender.join(10_000);
                if (sender.isAlive()) {
                    problems.add("the flooding front-end's sender is still blocked after its socket was shut down");
                }
            }
            HostileFrontEndSoakTest.awaitIdle(log, CONNECTIONS + 2);
            check(problems, "after a flood of unread replies", HostileFrontEndSoakTest.honestRoundTrip(honest, server.socket()));

            // 3. Memory tables with huge regions: refused, nothing mapped.
            var region = ram.memory().regions().get(0);
            for (long size : new long[] {1L << 40, 1L << 62, 2L << 20}) {
                try (VhostUserFrontEnd fe = VhostUserFrontEnd.connect(server.socket())) {
                    fe.setOwner();
                    fe.setFeatures(fe.getFeatures());
                    byte[] table = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(0)
                            .putLong(0).putLong(size).putLong(region.userAddr()).putLong(0).array();
                    fe.send(VhostUserRequest.SET_MEM_TABLE, false, table, ram.fd(0));
                    fe.getFeatures(); // a round trip: the table has been dealt with
                } catch (IOException | io.vhostblk.frontend.VhostUserException refused) {
                    // Closing the connection is a fine answer.
                }
            }
            String text = Logs.tail(log, 1_000_000);
            if (!text.contains("ends past the end of its file")) {
                problems.add("the server log does not say why the huge regions were refused");
            }
            HostileFrontEndSoakTest.awaitIdle(log, 0);
            check(problems, "after huge memory tables", HostileFrontEndSoakTest.honestRoundTrip(honest, server.socket()));
            long rss = rssKib(server.pid());
            if (rss > MAX_SERVER_RSS_KIB) {
                problems.add("the server's resident memory grew to " + rss + " KiB");
            }
            StorageBackend.Exit exit = server.stop();
            if (!exit.clean()) {
                problems.add("the server must still run and exit 0 on SIGTERM, but it " + exit);
            }
            if (!problems.isEmpty()) {
                fail(problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems) + "\n" + server.logTail(40));
            }
        }
    }

    private static void check(List<String> problems, String when, String problem) {
        if (problem != null) {
            problems.add(when + ": " + problem);
        }
    }

    private static long openFds(long pid) throws IOException {
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        }
    }

    private static long rssKib(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return fail("no VmRSS in /proc/" + pid + "/status");
    }
}
