package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;

/** Results a layer answers a {@link BlockRequest} with, besides a byte count: {@code -errno} values modules use. */
public final class BlockResult {
    /** I/O error: the layers beneath failed, or a module could not do its part. */
    public static final long EIO = -Errno.EIO;
    /** Invalid request: not whole blocks of the layer's unit, or data shorter than the request. */
    public static final long EINVAL = -Errno.EINVAL;

    private BlockResult() {
    }
}
