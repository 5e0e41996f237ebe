package io.vhostblk.frontend;

import java.nio.ByteBuffer;

/**
 * The GET/SET_INFLIGHT_FD payload {mmap_size u64, mmap_offset u64, num_queues u16, queue_size
 * u16} (24 bytes with the C struct's tail padding, as QEMU sends it).
 */
public record InflightInfo(long mmapSize, long mmapOffset, int numQueues, int queueSize) {
    public static final int SIZE = 24;

    public static InflightInfo decode(VhostUserMessage m) throws VhostUserException {
        m.requirePayloadSize(SIZE);
        ByteBuffer b = m.payload();
        return new InflightInfo(b.getLong(), b.getLong(), b.getShort() & 0xffff, b.getShort() & 0xffff);
    }

    public byte[] encode() {
        return VhostUserMessage.newPayload(SIZE).putLong(mmapSize).putLong(mmapOffset)
                .putShort((short) numQueues).putShort((short) queueSize).array();
    }
}
