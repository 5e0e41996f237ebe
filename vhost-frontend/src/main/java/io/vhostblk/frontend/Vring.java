package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.SplitVirtqueue;

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
    /** Next avail index to process: SET_VRING_BASE, or where a stopped queue left off. */
    int base;
    EventFd kick;
    EventFd call;
    EventFd err;
    boolean enabled;
    SplitVirtqueue queue;
    VhostUserDevice.QueueWorker worker;

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
