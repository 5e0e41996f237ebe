package io.vhostblk.server;

import io.vhostblk.linux.UnixSocket;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * One client of the control socket: reads lines of at most {@link #MAX_LINE} bytes, answers each
 * with one line. A line too long, not UTF-8, or not a command gets an error reply and the
 * connection goes on.
 */
final class ControlConnection implements Runnable {
    private static final System.Logger LOG = System.getLogger(ControlConnection.class.getName());
    /** Longest command line in bytes, without its newline. */
    static final int MAX_LINE = 4096;

    private final UnixSocket socket;
    private final ControlProtocol protocol;
    private final Consumer<ControlConnection> onEnd;
    private final byte[] line = new byte[MAX_LINE];
    private int length;
    /** Inside a line that was too long and has been answered: drop bytes up to its newline. */
    private boolean skipping;

    ControlConnection(UnixSocket socket, ControlProtocol protocol, Consumer<ControlConnection> onEnd) {
        this.socket = socket;
        this.protocol = protocol;
        this.onEnd = onEnd;
    }

    /** Answers a connection that will not be served, then closes it. */
    static void refuse(UnixSocket peer, String why) {
        try {
            send(peer, ControlProtocol.error(why));
        } catch (IOException e) {
            LOG.log(Level.DEBUG, () -> "control: refused client went away: " + e.getMessage());
        } finally {
            peer.close();
        }
    }

    /** Wakes the connection's thread (it sees end of stream and ends). */
    void shutdown() {
        socket.shutdown();
    }

    @Override
    public void run() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(MAX_LINE);
            while (true) {
                long n = socket.receive(buf, 0).bytes();
                if (n == 0) {
                    if (length > 0 && !skipping) {
                        answer();
                    }
                    return;
                }
                for (long i = 0; i < n; i++) {
                    accept(buf.get(ValueLayout.JAVA_BYTE, i));
                }
            }
        } catch (IOException e) {
            // The client vanished or sent file descriptors: this connection ends, the server goes on.
            LOG.log(Level.DEBUG, () -> "control connection ended: " + e.getMessage());
        } finally {
            socket.close();
            onEnd.accept(this);
        }
    }

    private void accept(byte b) throws IOException {
        if (b == '\n') {
            if (skipping) {
                skipping = false;
            } else {
                answer();
            }
            length = 0;
            return;
        }
        if (skipping) {
            return;
        }
        if (length == MAX_LINE) {
            skipping = true;
            length = 0;
            send(socket, ControlProtocol.error("line longer than " + MAX_LINE + " bytes; ignored up to its newline"));
            return;
        }
        line[length++] = b;
    }

    private void answer() throws IOException {
        int n = length > 0 && line[length - 1] == '\r' ? length - 1 : length;
        length = 0;
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(line, 0, n)).toString();
        } catch (CharacterCodingException e) {
            send(socket, ControlProtocol.error("line is not valid UTF-8"));
            return;
        }
        send(socket, protocol.handle(text));
    }

    private static void send(UnixSocket peer, String reply) throws IOException {
        byte[] bytes = (reply + "\n").getBytes(StandardCharsets.UTF_8);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(bytes.length);
            MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
            peer.send(seg);
        }
    }
}
