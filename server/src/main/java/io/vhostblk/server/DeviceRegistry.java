package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.hooks.ChainEntry;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The devices this process serves, by id, as the control socket finds them; and the module
 * instances the control socket took out of their chains, kept until the device stops because
 * requests that started on an older chain may still be inside them.
 */
public final class DeviceRegistry {
    private static final System.Logger LOG = System.getLogger(DeviceRegistry.class.getName());

    private final Map<String, BlockDevice> devices = new LinkedHashMap<>();
    private final Map<String, List<ChainEntry>> retired = new LinkedHashMap<>();
    private final Map<String, ModuleSource> moduleSources = new LinkedHashMap<>();

    /** Adds a device; its id must be new. */
    public synchronized void register(BlockDevice device) {
        if (devices.putIfAbsent(device.id(), device) != null) {
            throw new IllegalArgumentException("a device with id '" + device.id() + "' is already registered");
        }
    }

    /** Adds a device whose modules come from its own policy (one daemon serves many VMs). */
    public synchronized void register(BlockDevice device, ModuleSource modules) {
        register(device);
        moduleSources.put(device.id(), modules);
    }

    /** The module source registered with {@code device}, or null when it uses the control socket's. */
    synchronized ModuleSource modules(BlockDevice device) {
        return devices.get(device.id()) == device ? moduleSources.get(device.id()) : null;
    }

    /** Whether a device called {@code id} is registered. */
    public synchronized boolean contains(String id) {
        return devices.containsKey(id);
    }

    /** The devices in registration order. */
    public synchronized List<BlockDevice> devices() {
        return List.copyOf(devices.values());
    }

    /** The device called {@code id}, or a control error naming the known ones. */
    public synchronized BlockDevice device(String id) throws ControlException {
        BlockDevice d = devices.get(id);
        if (d == null) {
            throw new ControlException("no device '" + ControlProtocol.shorten(id) + "' (devices: "
                    + (devices.isEmpty() ? "none" : String.join(", ", devices.keySet())) + ")");
        }
        return d;
    }

    /** Keeps a module instance taken out of {@code device}'s chain until {@link #stopped}. */
    synchronized void retire(BlockDevice device, ChainEntry entry) {
        retired.computeIfAbsent(device.id(), k -> new ArrayList<>()).add(entry);
    }

    /** How many detached instances {@code device} still holds (for tests and the log). */
    synchronized int retiredCount(BlockDevice device) {
        return retired.getOrDefault(device.id(), List.of()).size();
    }

    /**
     * The device's queues have stopped (no request is in any module any more): closes the
     * instances the control socket detached from it and forgets the device.
     */
    public void stopped(BlockDevice device) {
        List<ChainEntry> toClose;
        synchronized (this) {
            if (devices.remove(device.id(), device)) {
                moduleSources.remove(device.id());
            }
            toClose = retired.remove(device.id());
        }
        if (toClose == null) {
            return;
        }
        for (ChainEntry e : toClose) {
            try {
                e.instance().close();
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, device.label() + " module=" + e.name() + ": closing the detached instance failed", ex);
            }
        }
    }
}
