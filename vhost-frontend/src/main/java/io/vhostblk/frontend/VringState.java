package io.vhostblk.frontend;

import java.nio.ByteBuffer;

/** The vring state payload {index u32, num u32}: SET_VRING_NUM, SET/GET_VRING_BASE, SET_VRING_ENABLE. */
public record VringState(int index, int num) {
    public static final int SIZE = 8;

    public static VringState decode(VhostUserMessage m) throws VhostUserException {
        m.requirePayloadSize(SIZE);
        ByteBuffer b = m.payload();
        return new VringState(b.getInt(), b.getInt());
    }

    public byte[] encode() {
        return VhostUserMessage.newPayload(SIZE).putInt(index).putInt(num).array();
    }
}
