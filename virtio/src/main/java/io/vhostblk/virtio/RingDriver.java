package io.vhostblk.virtio;

import io.vhostblk.virtio.SplitRingDriver.Buf;

/**
 * The guest driver's side of a virtqueue of either ring format, as tests and benchmarks play it:
 * what they need to offer chains and take answers without caring which layout is underneath.
 */
public sealed interface RingDriver permits SplitRingDriver, PackedRingDriver {
    /** The device side of this ring, in the state the driver left it. */
    Virtqueue deviceQueue(boolean eventIdx, boolean indirect) throws VirtioException;

    /** Offers a direct chain (made available by {@link #publish()}); its head, or -1 when the ring is full. */
    int addChain(Buf... bufs);

    /**
     * Offers a virtio-blk request (header, data, one status byte) as a three-descriptor chain,
     * allocating nothing; its head, or -1 when the ring is full.
     */
    int addRequest(long header, int headerLen, long data, int dataLen, boolean dataWritable, long status);

    /** Offers a chain written into an indirect table; its head, or -1. */
    int addIndirectChain(Buf... bufs);

    /** Offers one descriptor pointing at an indirect table the caller wrote (any length: hostile tests); its head, or -1. */
    int addIndirectTable(long tableGpa, int len);

    /**
     * Writes entry {@code i} of an indirect table at {@code tableGpa}; {@code more}: another entry
     * follows (the split ring links it with NEXT, the packed ring by position).
     */
    void writeTableEntry(long tableGpa, int i, long addr, int len, int flags, boolean more);

    /** Makes the offered chains available (release). */
    void publish();

    /** The head of the next answer, or -1; its length is then {@link #lastUsedLength()}. */
    int reapUsed();

    int lastUsedLength();

    /** Whether a one-descriptor chain can be offered now. */
    boolean canAdd();
}
