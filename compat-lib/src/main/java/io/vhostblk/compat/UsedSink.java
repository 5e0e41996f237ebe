package io.vhostblk.compat;

/** Where a finished guest request goes: the virtqueue's used ring, owned by the queue's event loop. */
@FunctionalInterface
public interface UsedSink {
    /** The request at descriptor {@code head} is done; {@code writtenLength} bytes were written to the guest. */
    void used(int head, int writtenLength);
}
