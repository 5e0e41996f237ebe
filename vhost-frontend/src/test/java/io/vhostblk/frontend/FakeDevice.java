package io.vhostblk.frontend;

import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.Virtqueue;
import io.vhostblk.virtio.VirtioException;

import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** A {@link VhostUserDevice} that records what the session asks of it; its workers only consume the avail ring on stop. */
final class FakeDevice implements VhostUserDevice {
    static final long VIRTIO_F_VERSION_1 = 1L << 32;
    static final long FEATURES = VIRTIO_F_VERSION_1 | VhostUserProtocol.F_RING_EVENT_IDX | (1L << 9);

    /** A startQueue call, with what it was given. */
    record Started(int index, Virtqueue queue, EventFd kick, EventFd call) {
    }

    final byte[] config = new byte[60];
    final BlockingQueue<Started> started = new LinkedBlockingQueue<>();
    final BlockingQueue<Integer> stopped = new LinkedBlockingQueue<>();
    final List<String> configWrites = new CopyOnWriteArrayList<>();
    final AtomicInteger resets = new AtomicInteger();
    volatile long ackedFeatures;
    /** What the session last handed over with {@link #backendChannel}. */
    final BlockingQueue<java.util.Optional<BackendChannel>> backends = new LinkedBlockingQueue<>();

    FakeDevice() {
        for (int i = 0; i < config.length; i++) {
            config[i] = (byte) (i + 1);
        }
    }

    @Override
    public long features() {
        return FEATURES;
    }

    @Override
    public int maxQueues() {
        return 2;
    }

    @Override
    public byte[] config() {
        return config.clone();
    }

    @Override
    public void writeConfig(int offset, byte[] data) throws VhostUserException {
        if (offset < 20) {
            throw new VhostUserException("config offset " + offset + " is read-only");
        }
        configWrites.add(offset + ":" + data.length);
    }

    @Override
    public void featuresAcked(long features) {
        ackedFeatures = features;
    }

    @Override
    public QueueWorker startQueue(int index, Virtqueue queue, EventFd kick, EventFd call) {
        started.add(new Started(index, queue, kick, call));
        return new QueueWorker() {
            private boolean done;

            @Override
            public void stop() {
                if (done) {
                    return;
                }
                done = true;
                // Stand-in for "complete everything in flight": consume what the guest made available.
                try {
                    while (queue.popAvail() >= 0) {
                        // consumed
                    }
                } catch (VirtioException e) {
                    throw new IllegalStateException(e);
                }
                stopped.add(index);
            }
        };
    }

    @Override
    public void backendChannel(BackendChannel channel) {
        backends.add(java.util.Optional.ofNullable(channel));
    }

    @Override
    public void reset() {
        resets.incrementAndGet();
    }

    Started awaitStart() throws InterruptedException {
        Started s = started.poll(5, TimeUnit.SECONDS);
        if (s == null) {
            throw new AssertionError("startQueue was not called");
        }
        return s;
    }

    int awaitStop() throws InterruptedException {
        Integer i = stopped.poll(5, TimeUnit.SECONDS);
        if (i == null) {
            throw new AssertionError("queue was not stopped");
        }
        return i;
    }
}
