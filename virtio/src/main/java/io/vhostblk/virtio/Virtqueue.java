package io.vhostblk.virtio;

/**
 * A virtqueue seen from the device side, whichever ring format the driver negotiated (split or
 * packed): what a queue's event loop needs to take requests and answer them. A request is named
 * by its <em>head</em>: the split ring's head descriptor index, the packed ring's buffer id; both
 * lie in [0, {@link #size()}), so per-request state can be indexed by it. Single-threaded: the
 * queue's event loop owns it.
 */
public interface Virtqueue {
    /** Number of descriptors in the ring. */
    int size();

    /** The guest memory the ring and its buffers live in. */
    GuestMemory memory();

    /**
     * The next request the driver made available (or one a previous back-end left in flight),
     * flagged in flight; -1 when none.
     *
     * @throws VirtioException the ring itself is corrupt (the queue cannot go on)
     */
    int popAvail() throws VirtioException;

    /** Whether a request is available that {@link #popAvail()} has not returned; never throws. */
    boolean hasAvail();

    /** Flattens the descriptors of the request {@code head} into {@code out}, checking every guest value. */
    void walk(int head, DescriptorChain out) throws DescriptorException;

    /**
     * Answers a request {@link #walk} rejected: writes {@code status} where its status byte
     * belongs, if that can be found safely. Returns the length for {@link #pushUsed}: 1 or 0.
     */
    int answerRejected(int head, byte status);

    /** Whether head was answered but that answer is not yet visible to the driver. */
    boolean awaitingPublish(int head);

    /**
     * Records the answer to request {@code head}; visible to the driver at the next {@link #publishUsed()}.
     *
     * @throws IllegalStateException head is not in flight (answering twice would corrupt the guest's ring)
     */
    void pushUsed(int head, int writtenLength);

    /** Makes pushed answers visible (release); returns whether the driver wants a notification now. */
    boolean publishUsed();

    /**
     * Whether publishing what was pushed would notify the driver now: it has asked to hear of the
     * next answer (it waits for one). A hint for when to publish, read without a fence;
     * {@link #publishUsed()} still decides the notification exactly.
     */
    boolean driverAwaitsUsed();

    /** Turns driver notifications (kicks) on or off; fenced, so a following {@link #hasAvail()} is a safe re-check. */
    void setKicksEnabled(boolean enabled);

    /** Marks every device-writable buffer of a completed chain in the dirty log, if logging. */
    void logWritable(DescriptorChain chain);

    /**
     * Logs the device's writes into {@code log} (live migration) from now on; {@code usedLogGpa} is
     * the front-end's log address for the used ring (negative: none). Call before the loop runs.
     */
    void logWritesTo(DirtyLog log, long usedLogGpa);

    /** The next avail position the device will read, for logs. */
    int nextAvail();

    /** The ring state for VHOST_USER_GET_VRING_BASE, in the encoding SET_VRING_BASE takes back. */
    int vringBase();

    /** Requests a previous back-end left in flight that {@link #popAvail()} will hand out again first. */
    int resubmitPending();
}
