package io.vhostblk.frontend;

import io.vhostblk.linux.Libc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One vhost-user message: header (request, flags, size), payload and the file descriptors that
 * came with it. Received descriptors are owned by the message until a handler
 * {@linkplain #takeFd claims} one; {@link #closeUnclaimedFds()} closes the rest, so a rejected
 * message leaks nothing.
 */
public final class VhostUserMessage {
    private final int code;
    private final int flags;
    private final byte[] payload;
    private final int[] fds;
    private final boolean[] claimed;

    public VhostUserMessage(int code, int flags, byte[] payload, int[] fds) {
        this.code = code;
        this.flags = flags;
        this.payload = payload;
        this.fds = fds;
        this.claimed = new boolean[fds.length];
    }

    /** A request as a front-end sends it (version 1), optionally asking for a REPLY_ACK. */
    public static VhostUserMessage request(VhostUserRequest request, boolean needReply, byte[] payload, int... fds) {
        int flags = VhostUserProtocol.VERSION | (needReply ? VhostUserProtocol.FLAG_NEED_REPLY : 0);
        return new VhostUserMessage(request.code(), flags, payload, fds);
    }

    /** The reply to this message carrying {@code body} (and {@code fds}, which stay the sender's to close). */
    public VhostUserMessage reply(byte[] body, int... fds) {
        return new VhostUserMessage(code, VhostUserProtocol.VERSION | VhostUserProtocol.FLAG_REPLY, body, fds);
    }

    /** The raw request number. */
    public int code() {
        return code;
    }

    /** The request type, or null for a number this implementation does not know. */
    public VhostUserRequest request() {
        return VhostUserRequest.of(code);
    }

    /** The request's name for messages: its wire name, or its number when unknown. */
    public String name() {
        VhostUserRequest r = request();
        return r != null ? r.wireName() : "request " + code;
    }

    public int flags() {
        return flags;
    }

    public boolean needsReply() {
        return (flags & VhostUserProtocol.FLAG_NEED_REPLY) != 0;
    }

    public boolean isReply() {
        return (flags & VhostUserProtocol.FLAG_REPLY) != 0;
    }

    public int payloadSize() {
        return payload.length;
    }

    /** The payload as a read-only native-order buffer (vhost-user numbers are host byte order). */
    public ByteBuffer payload() {
        return ByteBuffer.wrap(payload).asReadOnlyBuffer().order(ByteOrder.nativeOrder());
    }

    public int fdCount() {
        return fds.length;
    }

    /** The descriptors to send with this message (front-end side); not claimed or closed by sending. */
    public int[] fdsToSend() {
        return fds.clone();
    }

    /** The payload must be exactly {@code size} bytes. */
    public void requirePayloadSize(int size) throws VhostUserException {
        if (payload.length != size) {
            throw new VhostUserException(name() + ": payload is " + payload.length + " bytes, expected " + size);
        }
    }

    /** Exactly {@code count} descriptors must have come with the message. */
    public void requireFds(int count) throws VhostUserException {
        if (fds.length != count) {
            throw new VhostUserException(name() + ": carries " + fds.length + " file descriptors, expected " + count);
        }
    }

    /** Hands descriptor {@code i} to the caller, who now owns it. */
    public int takeFd(int i) {
        if (claimed[i]) {
            throw new IllegalStateException(name() + ": descriptor " + i + " already taken");
        }
        claimed[i] = true;
        return fds[i];
    }

    /** Closes every received descriptor no handler took. Idempotent. */
    public void closeUnclaimedFds() {
        for (int i = 0; i < fds.length; i++) {
            if (!claimed[i]) {
                claimed[i] = true;
                Libc.close(fds[i]);
            }
        }
    }

    /** Header and payload as they go on the wire. */
    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(VhostUserProtocol.HEADER_SIZE + payload.length).order(ByteOrder.nativeOrder());
        b.putInt(code).putInt(flags).putInt(payload.length).put(payload);
        return b.array();
    }

    /** A native-order buffer of {@code size} bytes for building a payload. */
    public static ByteBuffer newPayload(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.nativeOrder());
    }

    /** A payload of one u64. */
    public static byte[] u64(long value) {
        return newPayload(8).putLong(value).array();
    }

    @Override
    public String toString() {
        return name() + " flags=0x" + Integer.toHexString(flags) + " size=" + payload.length + " fds=" + fds.length
                + (payload.length <= 16 ? " payload=" + Arrays.toString(payload) : "");
    }
}
