package io.vhostblk.bench;

/**
 * The driver side of one bench virtqueue, split or packed: what {@link QueueWorker} needs to
 * offer requests of its slots, reap them and choose between calls and polling. Allocation-free;
 * owned by the queue's worker thread.
 */
interface BenchRing {
    /** Once per slot before the run: where its header, data (bs bytes) and status byte live. */
    void setUpSlot(int slot, long header, long data, int bs, long status);

    /** Offers slot's request (its data device-writable for a read); the device sees it after {@link #publish()}. */
    void offer(int slot, boolean read);

    /** Makes offered requests visible to the device. */
    void publish();

    /** Whether the device asked to be kicked for what was just published. */
    boolean kickNeeded(boolean eventIdx);

    /**
     * The slot of the next completed request, or -1 when none.
     *
     * @throws BenchException the device returned an id that names no offered request
     */
    int reapSlot() throws BenchException;

    /** Asks the device for no calls (the worker busy-polls). */
    void callsOff(boolean eventIdx);

    /** Asks for a call at the next completion; then (after a fence) whether one is already there. */
    boolean armCallAndCheck(boolean eventIdx);
}
