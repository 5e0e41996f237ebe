package io.vhostblk.frontend;

import io.vhostblk.linux.UnixSocket;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Frames vhost-user messages on a Unix socket, for either side: the back-end receives requests
 * and sends replies, a front-end the opposite. Header fields are checked before the payload is
 * read, so an oversized or malformed header never makes us allocate or wait for its body.
 */
public final class VhostUserChannel implements AutoCloseable {
    private static final int VALID_FLAGS = VhostUserProtocol.FLAG_VERSION_MASK
            | VhostUserProtocol.FLAG_REPLY | VhostUserProtocol.FLAG_NEED_REPLY;

    private final UnixSocket socket;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment header = arena.allocate(VhostUserProtocol.HEADER_SIZE, 8);

    public VhostUserChannel(UnixSocket socket) {
        this.socket = socket;
    }

    public UnixSocket socket() {
        return socket;
    }

    /**
     * Receives one message with up to {@link VhostUserRequest#MAX_MEM_REGIONS} descriptors.
     * Returns null if the peer closed the connection between messages.
     *
     * @param reply whether a reply is expected (back-end → front-end) rather than a request
     * @throws VhostUserException for a truncated or malformed header, too many descriptors, or
     *                            an oversized payload; descriptors received are closed
     * @throws IOException        when the socket itself fails
     */
    public VhostUserMessage receive(boolean reply) throws VhostUserException, IOException {
        int[] fds;
        try {
            fds = socket.receiveFully(header, VhostUserRequest.MAX_MEM_REGIONS);
        } catch (EOFException e) {
            throw new VhostUserException("truncated message header: " + e.getMessage(), e);
        } catch (UnixSocket.TooManyFdsException e) {
            throw new VhostUserException("message carries more than " + VhostUserRequest.MAX_MEM_REGIONS
                    + " file descriptors (all closed)", e);
        }
        if (fds == null) {
            return null;
        }
        int code = header.get(ValueLayout.JAVA_INT, 0);
        int flags = header.get(ValueLayout.JAVA_INT, 4);
        int size = header.get(ValueLayout.JAVA_INT, 8);
        VhostUserMessage partial = new VhostUserMessage(code, flags, new byte[0], fds);
        try {
            checkHeader(partial.name(), flags, size, reply);
            byte[] payload = new byte[size];
            if (size > 0) {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment body = a.allocate(size);
                    socket.readFully(body);
                    MemorySegment.copy(body, ValueLayout.JAVA_BYTE, 0, payload, 0, size);
                } catch (EOFException e) {
                    throw new VhostUserException(partial.name() + ": truncated payload: " + e.getMessage(), e);
                } catch (UnixSocket.TooManyFdsException e) {
                    throw new VhostUserException(partial.name() + ": file descriptors arrived with the payload, not the header", e);
                }
            }
            return new VhostUserMessage(code, flags, payload, fds);
        } catch (VhostUserException | IOException | RuntimeException e) {
            partial.closeUnclaimedFds();
            throw e;
        }
    }

    private static void checkHeader(String name, int flags, int size, boolean reply) throws VhostUserException {
        if ((flags & VhostUserProtocol.FLAG_VERSION_MASK) != VhostUserProtocol.VERSION) {
            throw new VhostUserException(name + ": protocol version " + (flags & VhostUserProtocol.FLAG_VERSION_MASK)
                    + ", only " + VhostUserProtocol.VERSION + " is supported");
        }
        if ((flags & ~VALID_FLAGS) != 0) {
            throw new VhostUserException(name + ": reserved header flag bits set: flags 0x" + Integer.toHexString(flags));
        }
        boolean isReply = (flags & VhostUserProtocol.FLAG_REPLY) != 0;
        if (isReply != reply) {
            throw new VhostUserException(name + ": REPLY flag is " + (isReply ? "set on a request" : "missing on a reply"));
        }
        if (size < 0 || size > VhostUserProtocol.MAX_PAYLOAD) {
            throw new VhostUserException(name + ": payload size " + Integer.toUnsignedString(size)
                    + " exceeds the maximum of " + VhostUserProtocol.MAX_PAYLOAD);
        }
    }

    /** Sends a message with the descriptors it carries (they stay open on this side). */
    public void send(VhostUserMessage message) throws IOException {
        byte[] bytes = message.encode();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment seg = a.allocate(bytes.length);
            MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
            socket.send(seg, message.fdsToSend());
        }
    }

    /** Closes the socket (and the header buffer). Shut the socket down first if another thread may be reading. */
    @Override
    public void close() {
        socket.close();
        arena.close();
    }
}
