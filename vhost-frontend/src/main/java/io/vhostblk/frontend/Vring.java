package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.Virtqueue;

/**
 * One virtqueue's vhost-user state as the front-end configured it, and its worker while it runs.
 * Owned by the session thread.
 */
final class Vring {
    final int index;
    /** Queue size (SET_VRING_NUM), 0 until set. */
    int size;
    /** Ring addresses (SET_VRING_ADDR), null until set. */
    VringAddress address;
    /**
     * Where the ring resumes: SET_VRING_BASE, or where a stopped queue left off (split: the next
     * avail index; packed: avail and used positions with their wrap counters, see {@link io.vhostblk.virtio.PackedVirtqueue}).
     */
    int base;
    EventFd kick;
    EventFd call;
    EventFd err;
    boolean enabled;
    Virtqueue queue;
    VhostUserDevice.QueueWorker worker;
    /** A running packed ring's record in the inflight area (where it saves its state on stop), or null. */
    io.vhostblk.virtio.InflightRegion packedRecord;

    Vring(int index) {
        this.index = index;
    }

    boolean running() {
        return worker != null;
    }

    /** Back to the initial (stopped, unconfigured) state, closing the descriptors it holds. */
    void reset() {
        size = 0;
        address = null;
        base = 0;
        enabled = false;
        kick = replace(kick, null);
        call = replace(call, null);
        err = replace(err, null);
    }

    /** Closes {@code old} (if any) and returns {@code fresh}, for swapping a ring's eventfd. */
    static EventFd replace(EventFd old, EventFd fresh) {
        if (old != null) {
            old.close();
        }
        return fresh;
    }

    @Override
    public String toString() {
        return "vring " + index;
    }
}
