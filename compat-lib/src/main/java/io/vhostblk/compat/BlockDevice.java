package io.vhostblk.compat;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookChain;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * One exported block device as the compat-lib sees it: its identity (device id, VM), its driver,
 * the guest-visible settings that can change at run time (writeback cache), and its hook chain,
 * held in one volatile reference so modules can be swapped while the guest runs.
 */
public final class BlockDevice {
    private final List<QueueStats> queues = new CopyOnWriteArrayList<>();
    private static final System.Logger LOG = System.getLogger(BlockDevice.class.getName());
    /** virtio-blk's GET_ID answer is at most this many bytes. */
    public static final int SERIAL_BYTES = 20;
    /** virtio-blk's sector, and the smallest logical block size. */
    public static final int MIN_BLOCK_SIZE = 512;

    private final String id;
    private final String vmName;
    private final BlockDriver driver;
    private final byte[] serial;
    private volatile boolean writeback;
    private volatile HookChain hooks;
    private volatile long capacitySectors;
    private volatile int logicalBlockSize = MIN_BLOCK_SIZE;
    private volatile boolean geometryFixed;
    private volatile String failure;
    /** How the guest learns of a config change (set by the vhost-user device), or null. */
    private volatile ConfigNotifier notifier;

    public BlockDevice(String id, String vmName, BlockDriver driver, boolean writeback) {
        this.id = id;
        this.vmName = vmName;
        this.driver = driver;
        this.writeback = writeback;
        byte[] s = id.getBytes(StandardCharsets.US_ASCII);
        this.serial = Arrays.copyOf(s, Math.min(s.length, SERIAL_BYTES));
        this.capacitySectors = driver.capacity() >>> 9;
        driver.capacityListener(this::driverResized);
    }

    /** The queues serving this device now, for metrics (changed when a queue starts or stops, never per request). */
    public List<QueueStats> queueStats() {
        return queues;
    }

    void queueStarted(QueueStats stats) {
        queues.add(stats);
    }

    void queueStopped(QueueStats stats) {
        queues.remove(stats);
    }

    public String id() {
        return id;
    }

    public String vmName() {
        return vmName;
    }

    public BlockDriver driver() {
        return driver;
    }

    /** Capacity the guest sees, in 512-byte sectors: the driver's, less what modules keep for themselves. */
    public long capacitySectors() {
        return capacitySectors;
    }

    /** The guest-visible size for a chain: each module, innermost first, may keep part of the device. */
    private long capacityOf(HookChain chain) {
        long bytes = driver.capacity();
        if (chain != null) {
            for (int i = chain.size() - 1; i >= 0; i--) {
                bytes = chain.entries().get(i).instance().capacity(bytes);
            }
        }
        return bytes >>> 9;
    }

    /** The largest I/O unit any module of the chain needs (512 without modules). */
    private static int blockSizeOf(HookChain chain) {
        int size = MIN_BLOCK_SIZE;
        if (chain != null) {
            for (var e : chain.entries()) {
                size = Math.max(size, e.instance().logicalBlockSize());
            }
        }
        return size;
    }

    /** What {@link #resize} did: the guest-visible size before and after, and how the guest was told. */
    public record Resized(long bytesBefore, long bytesAfter, String guest) {
    }

    /** Sets how the guest is told of config changes (the vhost-user device does, once). */
    public void configNotifier(ConfigNotifier notifier) {
        this.notifier = notifier;
    }

    /**
     * Changes the size of the storage beneath to {@code bytes} and shows the guest the new
     * capacity: the driver grows first, then the capacity the request checks and the config
     * space read, in one volatile write, so a request accepted against either size lies inside
     * the driver's. Shrinking is refused while a queue runs (the guest would lose the end of its
     * disk under it), and so is any size change a module of the chain does not allow. Then the
     * guest is told (outside the lock: the front-end may take its time to answer).
     */
    public Resized resize(long bytes) throws ResizeException {
        long before;
        long after;
        synchronized (this) {
            if (bytes <= 0 || bytes % MIN_BLOCK_SIZE != 0) {
                throw new ResizeException(label() + ": size " + bytes + " is not a positive multiple of "
                        + MIN_BLOCK_SIZE + " bytes");
            }
            if (failure != null) {
                throw new ResizeException(label() + ": the device failed closed (" + failure + ")");
            }
            HookChain chain = hooks;
            String refusal = moduleRefusingResize(chain);
            if (refusal != null) {
                throw new ResizeException(label() + " module=" + refusal
                        + ": the module does not allow the device beneath it to change size");
            }
            long current = driver.capacity();
            if (bytes < current && !queues.isEmpty()) {
                throw new ResizeException(label() + ": shrinking from " + current + " to " + bytes
                        + " bytes is refused while a guest uses the device (" + queues.size()
                        + " queues running): the end of its disk would vanish under it");
            }
            before = capacitySectors;
            try {
                driver.resize(bytes);
            } catch (DriverException e) {
                throw new ResizeException(label() + ": " + e.getMessage(), e);
            }
            capacitySectors = capacityOf(chain);
            after = capacitySectors;
        }
        LOG.log(System.Logger.Level.INFO, label() + ": resized to " + bytes + " bytes, guest capacity "
                + (before << 9) + " -> " + (after << 9) + " bytes");
        return new Resized(before << 9, after << 9, announce(before, after));
    }

    /**
     * The storage beneath changed size by itself (an RBD image resized by another client): the
     * guest is shown the new size as after {@link #resize}, unless a module of the chain fixes the
     * size. A shrink under a running guest cannot be refused any more; it is logged, and requests
     * past the new end fail.
     */
    void driverResized(long bytes) {
        long before;
        long after;
        synchronized (this) {
            HookChain chain = hooks;
            String refusal = moduleRefusingResize(chain);
            if (refusal != null) {
                LOG.log(System.Logger.Level.ERROR, label() + " module=" + refusal + ": the storage beneath changed size to "
                        + bytes + " bytes outside vhost-blk, which the module does not allow; the guest keeps "
                        + (capacitySectors << 9) + " bytes");
                return;
            }
            before = capacitySectors;
            capacitySectors = capacityOf(chain);
            after = capacitySectors;
        }
        LOG.log(after < before && !queues.isEmpty() ? System.Logger.Level.WARNING : System.Logger.Level.INFO,
                label() + ": the storage beneath changed size outside vhost-blk, guest capacity " + (before << 9)
                        + " -> " + (after << 9) + " bytes");
        announce(before, after);
    }

    /** The name of the first module of {@code chain} that does not allow a resize, or null. */
    private static String moduleRefusingResize(HookChain chain) {
        if (chain != null) {
            for (var e : chain.entries()) {
                if (!e.instance().allowsResize()) {
                    return e.name();
                }
            }
        }
        return null;
    }

    /** Tells the guest the capacity changed (outside any lock: the front-end may take its time). */
    private String announce(long before, long after) {
        ConfigNotifier n = notifier;
        return before == after ? "capacity unchanged, guest not told"
                : n == null ? "no vhost-user device attached" : n.configChanged();
    }

    /** The logical block size the guest is told (virtio-blk {@code blk_size}). */
    public int logicalBlockSize() {
        return logicalBlockSize;
    }

    /** From now on the guest knows the geometry: chain changes that would alter it are refused. */
    public void geometryFixed() {
        this.geometryFixed = true;
    }

    public boolean readOnly() {
        return driver.readOnly();
    }

    /** The serial number GET_ID returns (the device id, truncated to 20 bytes). */
    public byte[] serial() {
        return serial.clone();
    }

    public boolean writeback() {
        return writeback;
    }

    /** The guest toggled the cache mode (virtio-blk config {@code writeback}). */
    public void writeback(boolean on) {
        this.writeback = on;
    }

    /** The current hook chain, or null when no module is enabled (the fast path: one null test). */
    public HookChain hooks() {
        return hooks;
    }

    /** The current chain, empty rather than null. */
    public HookChain chain() {
        HookChain c = hooks;
        return c == null ? HookChain.empty() : c;
    }

    /** Replaces the hook chain; requests already in flight finish on the chain they started on. */
    public synchronized void hooks(HookChain chain) {
        long sectors = capacityOf(chain);
        int blockSize = blockSizeOf(chain);
        if (geometryFixed && sectors != capacitySectors) {
            throw new IllegalStateException(label() + ": this chain would change the device size from "
                    + capacitySectors + " to " + sectors + " sectors while a guest uses it");
        }
        if (geometryFixed && blockSize != logicalBlockSize) {
            throw new IllegalStateException(label() + ": this chain would change the logical block size from "
                    + logicalBlockSize + " to " + blockSize + " bytes while a guest uses it");
        }
        this.capacitySectors = sectors;
        this.logicalBlockSize = blockSize;
        this.hooks = chain == null || chain.size() == 0 ? null : chain;
    }

    /** Applies a change to the chain atomically with respect to other changes; returns the new chain. */
    public synchronized HookChain updateChain(java.util.function.UnaryOperator<HookChain> change) {
        HookChain next = change.apply(chain());
        hooks(next);
        return next;
    }

    /** Takes a failing module out of the chain (requests in flight finish where they are). */
    public void disableModule(String name, String reason) {
        var entry = chain().find(name);
        if (entry.isEmpty()) {
            return;
        }
        if (entry.get().instance().failClosed()) {
            failClosed("module " + name + " failed and cannot be bypassed: " + reason);
            return;
        }
        try {
            updateChain(c -> c.without(name));
        } catch (IllegalStateException e) {
            // Removing it would change the size the guest sees: the module holds the layout.
            failClosed("module " + name + " failed and holds the device layout: " + reason);
            return;
        }
        LOG.log(System.Logger.Level.ERROR, label() + " module=" + name + ": disabled: " + reason);
    }

    /** Stops serving I/O (every request fails) until the device is restarted. */
    public void failClosed(String reason) {
        if (failure == null) {
            failure = reason;
            LOG.log(System.Logger.Level.ERROR, label() + ": device failed closed, every request now fails: " + reason);
        }
    }

    /** Why the device failed closed, or null while it serves. */
    public String failure() {
        return failure;
    }

    /** What modules may know of this device. */
    public DeviceInfo info() {
        return new DeviceInfo(id, vmName, driver.kind(), driver.capacity(), driver.readOnly(), driver.target());
    }

    /** A short label for logs: {@code vm=NAME device=ID}. */
    public String label() {
        return "vm=" + vmName + " device=" + id;
    }
}
