package io.vhostblk.bench;

import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.SplitRingDriver;

/** One virtqueue as the bench's driver sees it: its split ring in shared memory and its kick and call eventfds. */
record QueueRing(int index, SplitRingDriver ring, EventFd kick, EventFd call) {
}
