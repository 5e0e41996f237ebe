package io.vhostblk.compat;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.hooks.HookChain;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One exported block device as the compat-lib sees it: its identity (device id, VM), its driver,
 * the guest-visible settings that can change at run time (writeback cache), and its hook chain,
 * held in one volatile reference so modules can be swapped while the guest runs.
 */
public final class BlockDevice {
    /** virtio-blk's GET_ID answer is at most this many bytes. */
    public static final int SERIAL_BYTES = 20;

    private final String id;
    private final String vmName;
    private final BlockDriver driver;
    private final byte[] serial;
    private volatile boolean writeback;
    private volatile HookChain hooks;

    public BlockDevice(String id, String vmName, BlockDriver driver, boolean writeback) {
        this.id = id;
        this.vmName = vmName;
        this.driver = driver;
        this.writeback = writeback;
        byte[] s = id.getBytes(StandardCharsets.US_ASCII);
        this.serial = Arrays.copyOf(s, Math.min(s.length, SERIAL_BYTES));
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

    /** Capacity in 512-byte sectors. */
    public long capacitySectors() {
        return driver.capacity() >>> 9;
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

    /** Replaces the hook chain; requests already in flight finish on the chain they started on. */
    public void hooks(HookChain chain) {
        this.hooks = chain == null || chain.size() == 0 ? null : chain;
    }

    /** A short label for logs: {@code vm=NAME device=ID}. */
    public String label() {
        return "vm=" + vmName + " device=" + id;
    }
}
