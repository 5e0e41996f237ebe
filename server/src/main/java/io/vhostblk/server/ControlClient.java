package io.vhostblk.server;

import io.vhostblk.linux.UnixSocket;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** The client side of the control socket: one command line out, one reply line back. */
public final class ControlClient implements AutoCloseable {
    /** Longest reply accepted, in bytes (a module report is small; this only bounds a broken server). */
    static final int MAX_REPLY = 16 << 20;

    private final UnixSocket socket;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buf = arena.allocate(65536);
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    private ControlClient(UnixSocket socket) {
        this.socket = socket;
    }

    /** Connects to the control socket at {@code path}. */
    public static ControlClient connect(Path path) throws IOException {
        return new ControlClient(UnixSocket.connect(path));
    }

    /** Sends one command (no newline in it) and returns the reply line without its newline. */
    public String request(String command) throws IOException {
        send(command + "\n");
        return readLine();
    }

    /** Sends raw text as it is (tests use it for partial and malformed lines). */
    public void send(String text) throws IOException {
        sendBytes(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Sends raw bytes as they are. */
    public void sendBytes(byte[] bytes) throws IOException {
        try (Arena temporary = Arena.ofConfined()) {
            MemorySegment seg = temporary.allocate(Math.max(1, bytes.length));
            MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
            socket.send(seg.asSlice(0, bytes.length));
        }
    }

    /** The next reply line; end of stream before a whole line is an {@link EOFException}. */
    public String readLine() throws IOException {
        while (true) {
            byte[] have = pending.toByteArray();
            for (int i = 0; i < have.length; i++) {
                if (have[i] == '\n') {
                    pending.reset();
                    pending.write(have, i + 1, have.length - i - 1);
                    return new String(have, 0, i, StandardCharsets.UTF_8);
                }
            }
            if (have.length > MAX_REPLY) {
                throw new IOException("reply longer than " + MAX_REPLY + " bytes");
            }
            long n = socket.receive(buf, 0).bytes();
            if (n == 0) {
                throw new EOFException("the server closed the connection"
                        + (have.length > 0 ? " in the middle of a reply" : " without replying"));
            }
            pending.write(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), 0, (int) n);
        }
    }

    @Override
    public void close() {
        socket.close();
        arena.close();
    }
}
