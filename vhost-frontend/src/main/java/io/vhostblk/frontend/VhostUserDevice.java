package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.Virtqueue;

/**
 * What a device type (virtio-blk here) supplies to the generic vhost-user session: its feature
 * bits, its config space, and a worker per started queue.
 */
public interface VhostUserDevice {

    /** Virtio feature bits offered (device bits, ring bits, VERSION_1); the session adds PROTOCOL_FEATURES. */
    long features();

    /** Number of queues the device supports (GET_QUEUE_NUM). */
    int maxQueues();

    /** The config space as the guest currently sees it (GET_CONFIG reads a window of it). */
    byte[] config();

    /** A front-end write into the config space (SET_CONFIG), e.g. the writeback toggle. */
    void writeConfig(int offset, byte[] data) throws VhostUserException;

    /** Called when the front-end sets the negotiated features (SET_FEATURES). */
    void featuresAcked(long features);

    /**
     * Starts serving a queue: the ring is set up and enabled and its kick fd is known. The
     * returned worker runs on its own thread until {@link QueueWorker#stop()}.
     *
     * @param call the call eventfd to signal the guest, or null if the front-end gave none
     */
    QueueWorker startQueue(int index, Virtqueue queue, EventFd kick, EventFd call) throws VhostUserException;

    /**
     * The front-end opened (or, with null, the session closed) the back-end channel on which the
     * device may announce config changes. The session owns and closes the channel.
     */
    default void backendChannel(BackendChannel channel) {
    }

    /** The connection went away or RESET_OWNER was received: all queues are already stopped. */
    void reset();

    /** A running queue's event loop. */
    interface QueueWorker {
        /**
         * Stops the loop after completing every in-flight request to the used ring, so the
         * ring's next-avail index is exact afterwards. Idempotent.
         */
        void stop();
    }
}
