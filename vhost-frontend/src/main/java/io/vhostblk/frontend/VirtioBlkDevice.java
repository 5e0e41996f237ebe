package io.vhostblk.frontend;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.compat.QueueContext;
import io.vhostblk.linux.EventFd;
import io.vhostblk.virtio.BlkConfig;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.System.Logger.Level;

/**
 * A virtio-blk device served over vhost-user: its feature bits and config space, derived from
 * the {@link BlockDevice} behind it, and one {@link QueueLoop} per started queue.
 */
public final class VirtioBlkDevice implements VhostUserDevice {
    private static final System.Logger LOG = System.getLogger(VirtioBlkDevice.class.getName());
    /** Largest discard / write-zeroes range per request, in sectors (1 GiB). */
    static final int MAX_RANGE_SECTORS = 1 << 21;
    /** Largest data segment the guest may put in one descriptor. */
    static final int SIZE_MAX = 1 << 20;

    /** Physical block size advertised in the topology: the page and file-system block of the host. */
    static final int PHYSICAL_BLOCK = 4096;

    private final BlockDevice device;
    private final int queues;
    private final int maxQueueSize;
    private final QueueTuning tuning;

    /**
     * @param tuning how the queue loops wait for work
     */
    public VirtioBlkDevice(BlockDevice device, int queues, int maxQueueSize, QueueTuning tuning) {
        this.device = device;
        this.queues = queues;
        this.maxQueueSize = maxQueueSize;
        this.tuning = tuning;
    }

    public BlockDevice blockDevice() {
        return device;
    }

    @Override
    public long features() {
        long f = bit(VirtioBlk.F_VERSION_1) | bit(VirtioBlk.F_RING_INDIRECT_DESC) | bit(VirtioBlk.F_RING_EVENT_IDX)
                | bit(VirtioBlk.F_SIZE_MAX) | bit(VirtioBlk.F_SEG_MAX) | bit(VirtioBlk.F_BLK_SIZE)
                | bit(VirtioBlk.F_TOPOLOGY) | bit(VirtioBlk.F_FLUSH) | bit(VirtioBlk.F_CONFIG_WCE) | bit(VirtioBlk.F_MQ);
        if (device.readOnly()) {
            f |= bit(VirtioBlk.F_RO);
        } else {
            if (device.driver().supportsDiscard()) {
                f |= bit(VirtioBlk.F_DISCARD);
            }
            if (device.driver().supportsWriteZeroes()) {
                f |= bit(VirtioBlk.F_WRITE_ZEROES);
            }
        }
        return f;
    }

    private static long bit(int n) {
        return 1L << n;
    }

    @Override
    public int maxQueues() {
        return queues;
    }

    /** Largest queue size the device accepts from the front-end. */
    public int maxQueueSize() {
        return maxQueueSize;
    }

    /**
     * Data segments one request may carry. Linux builds indirect tables of up to seg_max + 2
     * entries, and a chain may not be longer than the queue, whose size the front-end picks after
     * reading the config (QEMU's default and smallest usual size is 128): 128 - 2 keeps every
     * chain a Linux guest builds within the limit the walker enforces.
     */
    static final int SEG_MAX = 126;

    /** Segments one request may carry (see {@link #SEG_MAX}). */
    int segMax() {
        return SEG_MAX;
    }

    @Override
    public byte[] config() {
        device.geometryFixed();
        return BlkConfig.builder()
                .capacitySectors(device.capacitySectors())
                .sizeMax(SIZE_MAX)
                .segMax(segMax())
                .blkSize(device.logicalBlockSize())
                .topology(physicalBlockExponent(device.logicalBlockSize()), 0,
                        Math.max(1, PHYSICAL_BLOCK / device.logicalBlockSize()), 0)
                .writeback(device.writeback())
                .numQueues(queues)
                .discard(MAX_RANGE_SECTORS, 1, 8)
                .writeZeroes(MAX_RANGE_SECTORS, 1, true)
                .build()
                .toBytes();
    }

    /** log2(physical / logical) blocks, as virtio-blk's topology wants it; 0 when logical ≥ physical. */
    static int physicalBlockExponent(int logicalBlockSize) {
        return logicalBlockSize >= PHYSICAL_BLOCK ? 0 : Integer.numberOfTrailingZeros(PHYSICAL_BLOCK / logicalBlockSize);
    }

    @Override
    public void writeConfig(int offset, byte[] data) throws VhostUserException {
        if (offset == BlkConfig.WRITEBACK_OFFSET && data.length == 1 && (data[0] == 0 || data[0] == 1)) {
            device.writeback(data[0] == 1);
            LOG.log(Level.INFO, device.label() + ": guest set the cache to " + (data[0] == 1 ? "writeback" : "write-through"));
            return;
        }
        throw new VhostUserException("SET_CONFIG: only the 1-byte writeback field (offset " + BlkConfig.WRITEBACK_OFFSET
                + ", value 0 or 1) is writable; got offset " + offset + ", size " + data.length);
    }

    @Override
    public void featuresAcked(long features) {
        LOG.log(Level.DEBUG, () -> device.label() + ": features acked 0x" + Long.toHexString(features));
    }

    @Override
    public QueueWorker startQueue(int index, SplitVirtqueue queue, EventFd kick, EventFd call) throws VhostUserException {
        if (queue.size() > maxQueueSize) {
            // Each queue preallocates a request slot per possible head: the operator bounds that.
            throw new VhostUserException(device.label() + ": queue " + index + " has " + queue.size()
                    + " entries, more than --queue-size " + maxQueueSize + " allows");
        }
        String label = device.id() + "-q" + index;
        int segments = 2 * queue.size() + 2;
        return new QueueLoop(label, queue,
                sink -> new QueueContext(device, index, queue.size(), segments, sink), kick, call, tuning).start();
    }

    @Override
    public void reset() {
        LOG.log(Level.INFO, device.label() + ": front-end reset the device");
    }
}
