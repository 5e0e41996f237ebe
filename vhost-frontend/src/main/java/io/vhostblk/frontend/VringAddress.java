package io.vhostblk.frontend;

import java.nio.ByteBuffer;

/**
 * The vring address payload of SET_VRING_ADDR: {index u32, flags u32, desc u64, used u64,
 * avail u64, log u64}, ring addresses in the front-end's user address space.
 */
public record VringAddress(int index, int flags, long descUserAddr, long usedUserAddr, long availUserAddr,
                           long logGuestAddr) {
    public static final int SIZE = 40;
    /** VHOST_VRING_F_LOG: log used-ring writes at log_guest_addr (migration). */
    public static final int F_LOG = 1;

    public static VringAddress decode(VhostUserMessage m) throws VhostUserException {
        m.requirePayloadSize(SIZE);
        ByteBuffer b = m.payload();
        return new VringAddress(b.getInt(), b.getInt(), b.getLong(), b.getLong(), b.getLong(), b.getLong());
    }

    public byte[] encode() {
        return VhostUserMessage.newPayload(SIZE).putInt(index).putInt(flags).putLong(descUserAddr)
                .putLong(usedUserAddr).putLong(availUserAddr).putLong(logGuestAddr).array();
    }
}
