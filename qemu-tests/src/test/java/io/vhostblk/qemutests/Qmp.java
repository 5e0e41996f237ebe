package io.vhostblk.qemutests;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** A QMP connection to a QEMU's monitor socket: capabilities negotiated, then one command a line. */
final class Qmp implements AutoCloseable {
    private final SocketChannel channel;
    private final BufferedReader in;
    private final OutputStream out;

    private Qmp(SocketChannel channel) {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        this.out = Channels.newOutputStream(channel);
    }

    /** Connects, reads the greeting and leaves capabilities negotiation mode. */
    static Qmp connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            Qmp qmp = new Qmp(ch);
            qmp.in.readLine(); // greeting
            String caps = qmp.command("{\"execute\":\"qmp_capabilities\"}");
            if (!caps.contains("\"return\"")) {
                throw new IOException("qmp_capabilities: " + caps);
            }
            return qmp;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Sends one command and returns its reply line, skipping asynchronous events. */
    String command(String json) throws IOException {
        out.write((json + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        String line;
        while ((line = in.readLine()) != null) {
            if (!line.contains("\"event\"")) {
                return line;
            }
        }
        throw new IOException("QMP closed the connection");
    }

    /** A command that must succeed: returns null when it did, else what QEMU said. */
    String execute(String json) throws IOException {
        String reply = command(json);
        return reply.contains("\"return\"") ? null : json + ": " + reply;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
