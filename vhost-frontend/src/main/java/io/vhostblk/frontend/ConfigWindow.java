package io.vhostblk.frontend;

import java.nio.ByteBuffer;

/**
 * The GET/SET_CONFIG payload: {offset u32, size u32, flags u32} then {@code size} bytes of the
 * device's config space (contents ignored in a GET request).
 */
public record ConfigWindow(int offset, int size, int flags, byte[] data) {
    public static final int HEADER_SIZE = 12;
    /** SET_CONFIG flag: the write comes from live migration rather than the guest. */
    public static final int FLAG_MIGRATION = 1;

    /** Decodes and checks the window's structure; whether it fits the device's config is the caller's check. */
    public static ConfigWindow decode(VhostUserMessage m) throws VhostUserException {
        if (m.payloadSize() < HEADER_SIZE) {
            throw new VhostUserException(m.name() + ": payload is " + m.payloadSize() + " bytes, shorter than the "
                    + HEADER_SIZE + "-byte config header");
        }
        ByteBuffer b = m.payload();
        int offset = b.getInt();
        int size = b.getInt();
        int flags = b.getInt();
        if (size < 0 || size > VhostUserProtocol.MAX_CONFIG_SIZE) {
            throw new VhostUserException(m.name() + ": config size " + Integer.toUnsignedString(size)
                    + " exceeds " + VhostUserProtocol.MAX_CONFIG_SIZE);
        }
        m.requirePayloadSize(HEADER_SIZE + size);
        if (flags != 0 && flags != FLAG_MIGRATION) {
            throw new VhostUserException(m.name() + ": unknown config flags 0x" + Integer.toHexString(flags));
        }
        byte[] data = new byte[size];
        b.get(data);
        return new ConfigWindow(offset, size, flags, data);
    }

    /** Whether [offset, offset+size) lies inside a config space of {@code length} bytes. */
    public boolean fits(int length) {
        return offset >= 0 && (long) offset + size <= length;
    }

    /**
     * This window's bytes of {@code config}, zero past its end: newer front-ends ask for the
     * config structure of their own virtio version, which may have fields after ours, and a
     * device without those fields reads as zero there (as the virtio spec's config space does).
     */
    public byte[] readFrom(byte[] config) {
        byte[] out = new byte[size];
        if (offset >= 0 && offset < config.length) {
            System.arraycopy(config, offset, out, 0, Math.min(size, config.length - offset));
        }
        return out;
    }

    public byte[] encode() {
        return VhostUserMessage.newPayload(HEADER_SIZE + data.length).putInt(offset).putInt(data.length).putInt(flags)
                .put(data).array();
    }
}
