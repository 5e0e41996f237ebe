package io.vhostblk.bench;

import io.vhostblk.linux.EventFd;

/** One virtqueue as the bench's driver sees it: its ring (split or packed) in shared memory and its kick and call eventfds. */
record QueueRing(int index, BenchRing ring, EventFd kick, EventFd call) {
}
