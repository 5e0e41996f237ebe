package io.vhostblk.frontend;

/**
 * Front-end → back-end request types, numbered as in QEMU's docs/interop/vhost-user.rst.
 *
 * <p>{@code maxFds} is the most descriptors the request may carry; {@code hasReply} marks the
 * requests that always answer with their own body (they never get a REPLY_ACK on top).
 */
public enum VhostUserRequest {
    GET_FEATURES(1, 0, true),
    SET_FEATURES(2, 0, false),
    SET_OWNER(3, 0, false),
    RESET_OWNER(4, 0, false),
    SET_MEM_TABLE(5, VhostUserRequest.MAX_MEM_REGIONS, false),
    SET_LOG_BASE(6, 1, false),
    SET_LOG_FD(7, 1, false),
    SET_VRING_NUM(8, 0, false),
    SET_VRING_ADDR(9, 0, false),
    SET_VRING_BASE(10, 0, false),
    GET_VRING_BASE(11, 0, true),
    SET_VRING_KICK(12, 1, false),
    SET_VRING_CALL(13, 1, false),
    SET_VRING_ERR(14, 1, false),
    GET_PROTOCOL_FEATURES(15, 0, true),
    SET_PROTOCOL_FEATURES(16, 0, false),
    GET_QUEUE_NUM(17, 0, true),
    SET_VRING_ENABLE(18, 0, false),
    SEND_RARP(19, 0, false),
    NET_SET_MTU(20, 0, false),
    SET_BACKEND_REQ_FD(21, 1, false),
    IOTLB_MSG(22, 0, true),
    SET_VRING_ENDIAN(23, 0, false),
    GET_CONFIG(24, 0, true),
    SET_CONFIG(25, 0, false),
    CREATE_CRYPTO_SESSION(26, 0, true),
    CLOSE_CRYPTO_SESSION(27, 0, false),
    POSTCOPY_ADVISE(28, 0, true),
    POSTCOPY_LISTEN(29, 0, false),
    POSTCOPY_END(30, 0, true),
    GET_INFLIGHT_FD(31, 0, true),
    SET_INFLIGHT_FD(32, 1, false),
    GPU_SET_SOCKET(33, 1, false),
    RESET_DEVICE(34, 0, false),
    VRING_KICK(35, 0, false),
    GET_MAX_MEM_SLOTS(36, 0, true),
    ADD_MEM_REG(37, 1, false),
    REM_MEM_REG(38, 1, false),
    SET_STATUS(39, 0, false),
    GET_STATUS(40, 0, true);

    /** VHOST_MEMORY_BASELINE_NREGIONS: regions in one SET_MEM_TABLE, and so descriptors per message. */
    public static final int MAX_MEM_REGIONS = 8;

    private static final VhostUserRequest[] BY_CODE = new VhostUserRequest[41];

    static {
        for (VhostUserRequest r : values()) {
            BY_CODE[r.code] = r;
        }
    }

    private final int code;
    private final int maxFds;
    private final boolean hasReply;

    VhostUserRequest(int code, int maxFds, boolean hasReply) {
        this.code = code;
        this.maxFds = maxFds;
        this.hasReply = hasReply;
    }

    /** The request's wire number. */
    public int code() {
        return code;
    }

    /** The most file descriptors this request may carry. */
    public int maxFds() {
        return maxFds;
    }

    /** Whether the back-end always answers this request with a reply body of its own. */
    public boolean hasReply() {
        return hasReply;
    }

    /** The request numbered {@code code}, or null if there is none. */
    public static VhostUserRequest of(int code) {
        return code > 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** {@code VHOST_USER_<NAME>} for logs. */
    public String wireName() {
        return "VHOST_USER_" + name();
    }
}
