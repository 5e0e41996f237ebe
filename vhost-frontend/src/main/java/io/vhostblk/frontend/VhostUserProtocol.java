package io.vhostblk.frontend;

/** Feature bits and limits of the vhost-user protocol (QEMU docs/interop/vhost-user.rst). */
public final class VhostUserProtocol {
    /** Virtio feature bit 30, reused by vhost-user: the back-end understands protocol features. */
    public static final long F_PROTOCOL_FEATURES = 1L << 30;
    /** VIRTIO_RING_F_INDIRECT_DESC. */
    public static final long F_RING_INDIRECT_DESC = 1L << 28;
    /** VHOST_F_LOG_ALL: log every guest write in the dirty bitmap (live migration). */
    public static final long F_LOG_ALL = 1L << 26;
    /** VIRTIO_F_RING_PACKED: the rings are packed virtqueues (their vring base carries wrap counters). */
    public static final long F_RING_PACKED = 1L << 34;
    /** VIRTIO_RING_F_EVENT_IDX. */
    public static final long F_RING_EVENT_IDX = 1L << 29;

    public static final int PROTOCOL_F_MQ = 0;
    public static final int PROTOCOL_F_LOG_SHMFD = 1;
    public static final int PROTOCOL_F_RARP = 2;
    public static final int PROTOCOL_F_REPLY_ACK = 3;
    public static final int PROTOCOL_F_MTU = 4;
    public static final int PROTOCOL_F_BACKEND_REQ = 5;
    public static final int PROTOCOL_F_CROSS_ENDIAN = 6;
    public static final int PROTOCOL_F_CRYPTO_SESSION = 7;
    public static final int PROTOCOL_F_PAGEFAULT = 8;
    public static final int PROTOCOL_F_CONFIG = 9;
    public static final int PROTOCOL_F_BACKEND_SEND_FD = 10;
    public static final int PROTOCOL_F_HOST_NOTIFIER = 11;
    public static final int PROTOCOL_F_INFLIGHT_SHMFD = 12;
    public static final int PROTOCOL_F_RESET_DEVICE = 13;
    public static final int PROTOCOL_F_INBAND_NOTIFICATIONS = 14;
    public static final int PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;
    public static final int PROTOCOL_F_STATUS = 16;

    /** Header flags: version 1 in bits 0-1, then REPLY and NEED_REPLY. */
    public static final int FLAG_VERSION_MASK = 0x3;
    public static final int VERSION = 0x1;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;

    /** Header: request, flags, size, each a native-order u32. */
    public static final int HEADER_SIZE = 12;
    /** Largest payload accepted; the biggest real one (a full memory table or config window) is under 300 bytes. */
    public static final int MAX_PAYLOAD = 4096;
    /** VHOST_USER_MAX_CONFIG_SIZE: the largest GET/SET_CONFIG window. */
    public static final int MAX_CONFIG_SIZE = 256;
    /** The largest virtqueue a split or packed ring may have. */
    public static final int MAX_QUEUE_SIZE = 32768;

    private VhostUserProtocol() {
    }

    /** The mask of one protocol feature bit. */
    public static long protocolBit(int bit) {
        return 1L << bit;
    }
}
