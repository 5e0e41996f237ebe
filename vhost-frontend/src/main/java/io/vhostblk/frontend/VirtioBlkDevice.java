package io.vhostblk.frontend;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.compat.VirtioBlkHandler;
import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.BlkConfig;
import io.vhostblk.virtio.Virtqueue;

import java.lang.System.Logger.Level;

/**
 * A virtio-blk device served over vhost-user: its feature bits and config space, derived from
 * the {@link BlockDevice} behind it, and one {@link QueueLoop} per started queue.
 */
public final class VirtioBlkDevice implements VhostUserDevice {
    private static final System.Logger LOG = System.getLogger(VirtioBlkDevice.class.getName());

    private final BlockDevice device;
    private final int queues;
    private final int maxQueueSize;
    private final QueueTuning tuning;
    /** What the driver acknowledged (SET_FEATURES); requests of other optional types are answered UNSUPP. */
    private volatile long ackedFeatures = -1;
    /** The current front-end's back-end channel, or null: where config changes (resize) are announced. */
    private volatile BackendChannel backend;

    /**
     * @param tuning how the queue loops wait for work
     */
    public VirtioBlkDevice(BlockDevice device, int queues, int maxQueueSize, QueueTuning tuning) {
        this.device = device;
        this.queues = queues;
        this.maxQueueSize = maxQueueSize;
        this.tuning = tuning;
        device.configNotifier(this::configChanged);
    }

    @Override
    public void backendChannel(BackendChannel channel) {
        this.backend = channel;
    }

    /** Announces a config change (the capacity) to the front-end, which re-reads it and tells the guest. */
    private String configChanged() {
        BackendChannel b = backend;
        if (b == null) {
            String why = "no back-end channel (no front-end connected, or it did not negotiate BACKEND_REQ):"
                    + " the guest sees the new size when it next reads the config (reconnect or reboot)";
            LOG.log(Level.WARNING, device.label() + ": " + why);
            return why;
        }
        String result = b.configChanged();
        LOG.log(Level.INFO, device.label() + ": config change announced: " + result);
        return result;
    }

    public BlockDevice blockDevice() {
        return device;
    }

    @Override
    public long features() {
        return VirtioBlkHandler.offeredFeatures(device);
    }

    @Override
    public int maxQueues() {
        return queues;
    }

    /** Largest queue size the device accepts from the front-end. */
    public int maxQueueSize() {
        return maxQueueSize;
    }

    /** Segments one request may carry (the virtio-blk model's {@link VirtioBlkHandler#SEG_MAX}). */
    static final int SEG_MAX = VirtioBlkHandler.SEG_MAX;

    @Override
    public byte[] config() {
        return VirtioBlkHandler.config(device, queues);
    }

    @Override
    public void writeConfig(int offset, byte[] data) throws VhostUserException {
        if (!VirtioBlkHandler.writeConfig(device, offset, data)) {
            throw new VhostUserException("SET_CONFIG: only the 1-byte writeback field (offset " + BlkConfig.WRITEBACK_OFFSET
                    + ", value 0 or 1) is writable; got offset " + offset + ", size " + data.length);
        }
    }

    @Override
    public void featuresAcked(long features) {
        this.ackedFeatures = features;
        LOG.log(Level.DEBUG, () -> device.label() + ": features acked 0x" + Long.toHexString(features));
    }

    @Override
    public QueueWorker startQueue(int index, Virtqueue queue, EventFd kick, EventFd call) throws VhostUserException {
        if (queue.size() > maxQueueSize) {
            // Each queue preallocates a request slot per possible head: the operator bounds that.
            throw new VhostUserException(device.label() + ": queue " + index + " has " + queue.size()
                    + " entries, more than --queue-size " + maxQueueSize + " allows");
        }
        String label = device.id() + "-q" + index;
        int segments = 2 * queue.size() + 2;
        return new QueueLoop(label, queue,
                sink -> new VirtioBlkHandler(device, index, queue.size(), segments, negotiated(), sink), kick, call, tuning).start();
    }

    /** The acknowledged features, or all offered ones when the front-end never sent SET_FEATURES. */
    private long negotiated() {
        long acked = ackedFeatures;
        return acked == -1 ? features() : acked;
    }

    @Override
    public void reset() {
        LOG.log(Level.INFO, device.label() + ": front-end reset the device");
    }
}
