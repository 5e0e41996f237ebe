package io.vhostblk.linux;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class UnixSocketTest {

    private static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd));
    }

    private static boolean isCloseOnExec(int fd) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
            if (line.startsWith("flags:")) {
                return (Integer.parseInt(line.substring(6).trim(), 8) & Libc.O_CLOEXEC) != 0;
            }
        }
        throw new IOException("no flags line for fd " + fd);
    }

    @Test
    void passesAnEventFdThatStaysConnectedToTheSendersCounter() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; EventFd sent = EventFd.create(true); Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocateFrom("hello", java.nio.charset.StandardCharsets.US_ASCII);
            a.send(out, sent.fd());
            MemorySegment in = arena.allocate(out.byteSize());
            int[] fds = b.receiveFully(in, 8);
            assertEquals(1, fds.length);
            assertTrue(isCloseOnExec(fds[0]), "received fd must be close-on-exec");
            assertEquals(-1, in.mismatch(out));
            try (EventFd received = EventFd.adopt(fds[0])) {
                assertEquals(0, received.signal());
                assertEquals(1, sent.drain());
            }
        }
    }

    @Test
    void passesSeveralMemfdsSharingTheSameMemory() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        int[] memfds = new int[3];
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < memfds.length; i++) {
                memfds[i] = (int) Libc.check("memfd_create", Libc.memfdCreate("t" + i, Libc.MFD_CLOEXEC), "");
                Libc.check("ftruncate", Libc.ftruncate(memfds[i], 4096), "");
            }
            a.send(arena.allocate(4), memfds);
            int[] got = b.receiveFully(arena.allocate(4), 8);
            assertEquals(3, got.length);
            MemorySegment mine = Libc.mmap(4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, memfds[2], 0);
            MemorySegment theirs = Libc.mmap(4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, got[2], 0);
            theirs.set(ValueLayout.JAVA_LONG, 128, 0x1234_5678_9abcL);
            assertEquals(0x1234_5678_9abcL, mine.get(ValueLayout.JAVA_LONG, 128));
            Libc.munmap(mine);
            Libc.munmap(theirs);
            UnixSocket.closeAll(got);
        } finally {
            UnixSocket.closeAll(memfds);
        }
    }

    @Test
    void tooManyDescriptorsIsTruncationAndClosesTheOnesReceived() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        int[] fds = new int[4];
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < fds.length; i++) {
                fds[i] = Libc.eventfd(0, Libc.EFD_CLOEXEC);
            }
            a.send(arena.allocate(8), fds);
            int highest = Libc.eventfd(0, Libc.EFD_CLOEXEC);
            Libc.close(highest);
            IOException e = assertThrows(UnixSocket.TooManyFdsException.class, () -> b.receive(arena.allocate(8), 2));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
            // The two that were installed were closed again: the next fd numbers are free.
            assertFalse(isOpen(highest));
            assertFalse(isOpen(highest + 1));
        } finally {
            UnixSocket.closeAll(fds);
        }
    }

    @Test
    void descriptorsWhereNoneAreExpectedAreRefusedAndClosed() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; EventFd e = EventFd.create(false); Arena arena = Arena.ofConfined()) {
            a.send(arena.allocate(8), e.fd());
            assertThrows(IOException.class, () -> b.readFully(arena.allocate(8)));
        }
    }

    @Test
    void endOfStreamBeforeAndDuringAMessage() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket b = pair[1]; Arena arena = Arena.ofConfined()) {
            try (UnixSocket a = pair[0]) {
                a.send(arena.allocate(3));
            }
            assertThrows(EOFException.class, () -> b.receiveFully(arena.allocate(8), 0));
            assertNull(b.receiveFully(arena.allocate(8), 0));
        }
    }

    @Test
    void reassemblesAMessageSentInPieces() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined()) {
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try (Arena w = Arena.ofConfined()) {
                    for (int i = 0; i < 4; i++) {
                        a.send(w.allocateFrom(ValueLayout.JAVA_INT, i));
                        Thread.sleep(10);
                    }
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            MemorySegment in = arena.allocate(16);
            b.readFully(in);
            writer.get(5, TimeUnit.SECONDS);
            assertArrayEquals(new int[] {0, 1, 2, 3}, in.toArray(ValueLayout.JAVA_INT));
        }
    }

    @Test
    void serverSocketAcceptsConnectsAndCleansUp(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("vhost.sock");
        try (UnixServerSocket server = UnixServerSocket.listen(path, true, 4)) {
            assertEquals(EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
                    Files.getPosixFilePermissions(path));
            try (UnixSocket client = UnixSocket.connect(path); UnixSocket accepted = server.accept(); Arena arena = Arena.ofConfined()) {
                assertTrue(isCloseOnExec(accepted.fd()));
                client.send(arena.allocateFrom(ValueLayout.JAVA_LONG, 42L));
                MemorySegment in = arena.allocate(8);
                accepted.readFully(in);
                assertEquals(42L, in.get(ValueLayout.JAVA_LONG, 0));
            }
            // A second bind while this one listens is refused.
            assertThrows(LinuxException.class, () -> UnixServerSocket.listen(path, false, 1));
        }
        assertFalse(Files.exists(path));
    }

    @Test
    void staleSocketIsReplacedButRegularFileIsNot(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("stale.sock");
        UnixServerSocket first = UnixServerSocket.listen(path, false, 1);
        // Simulate a dead owner: close the descriptor but leave the file behind.
        Libc.close(first.fd());
        try (UnixServerSocket second = UnixServerSocket.listen(path, false, 1)) {
            assertTrue(Files.exists(path));
        }
        Path file = dir.resolve("regular");
        Files.writeString(file, "data");
        LinuxException e = assertThrows(LinuxException.class, () -> UnixServerSocket.listen(file, false, 1));
        assertTrue(e.getMessage().contains("not a socket"), e.getMessage());
        assertEquals("data", Files.readString(file));
    }

    @Test
    void theSocketIsBoundBesideAndRenamedSoNothingElseIsLeft(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("vm.sock");
        try (UnixServerSocket server = UnixServerSocket.listen(path, true, 1);
                java.util.stream.Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(path), files.toList());
            try (UnixSocket client = UnixSocket.connect(path); UnixSocket accepted = server.accept()) {
                assertTrue(accepted.fd() >= 0);
            }
        }
        try (java.util.stream.Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(), files.toList());
        }
    }

    @Test
    void aPathWithNoRoomForTheTemporaryNameIsBoundInPlace(@TempDir Path top) throws Exception {
        // A directory so deep that "s" fits in sockaddr_un but ".PID-N.sock" beside it does not.
        Path dir = Files.createDirectory(top.resolve("d".repeat(UnixSocket.SUN_PATH_SIZE - 4 - top.toString().length())));
        Path path = dir.resolve("s");
        assertTrue(path.toString().length() < UnixSocket.SUN_PATH_SIZE);
        assertTrue(UnixServerSocket.temporaryName(path).toString().length() >= UnixSocket.SUN_PATH_SIZE);
        try (UnixServerSocket server = UnixServerSocket.listen(path, false, 1);
                UnixSocket client = UnixSocket.connect(path); UnixSocket accepted = server.accept()) {
            assertTrue(accepted.fd() >= 0);
        }
        assertFalse(Files.exists(path));
    }

    @Test
    void pathTooLongIsRefused(@TempDir Path dir) {
        Path path = dir.resolve("x".repeat(120));
        LinuxException e = assertThrows(LinuxException.class, () -> UnixServerSocket.listen(path, false, 1));
        assertTrue(e.getMessage().contains("must be 1..107"), e.getMessage());
    }

    @Test
    void shutdownWakesABlockedAcceptAndABlockedReceive(@TempDir Path dir) throws Exception {
        try (UnixServerSocket server = UnixServerSocket.listen(dir.resolve("s"), false, 1)) {
            CompletableFuture<Throwable> accept = CompletableFuture.supplyAsync(() -> {
                try {
                    server.accept().close();
                    return null;
                } catch (LinuxException e) {
                    return e;
                }
            });
            Thread.sleep(50);
            server.shutdown();
            assertTrue(accept.get(5, TimeUnit.SECONDS) instanceof LinuxException);
        }
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]) {
            CompletableFuture<int[]> recv = CompletableFuture.supplyAsync(() -> {
                try (Arena arena = Arena.ofConfined()) {
                    return b.receiveFully(arena.allocate(12), 8);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            Thread.sleep(50);
            b.shutdown();
            assertNull(recv.get(5, TimeUnit.SECONDS));
        }
    }
}
