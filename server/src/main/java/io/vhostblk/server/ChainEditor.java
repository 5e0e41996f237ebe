package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.ModuleException;

import java.lang.System.Logger.Level;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.UnaryOperator;

/**
 * Enables, disables and moves modules in a device's chain for the control socket. Each change
 * is checked and applied in one atomic swap of the chain; positions count from 0, nearest the guest.
 */
final class ChainEditor {
    private static final System.Logger LOG = System.getLogger(ChainEditor.class.getName());

    private final DeviceRegistry registry;
    private final ModuleSource modules;

    ChainEditor(DeviceRegistry registry, ModuleSource modules) {
        this.registry = registry;
        this.modules = modules;
    }

    /** The device's own module source (its policy), else the control socket's. */
    ModuleSource sourceFor(BlockDevice device) {
        ModuleSource own = registry.modules(device);
        return own != null ? own : modules;
    }

    /** A change refused while the chain was being swapped (the chain is left as it was). */
    private static final class Refused extends RuntimeException {
        Refused(String message) {
            super(message, null, false, false);
        }
    }

    /**
     * Attaches a new instance of {@code module} at {@code position}; null puts it where the
     * module source says (the policy's order).
     */
    synchronized HookChain enable(BlockDevice device, String module, Integer position) throws ControlException {
        ModuleSource modules = sourceFor(device);
        if (!modules.available().contains(module)) {
            throw new ControlException("no module '" + ControlProtocol.shorten(module) + "' in the policy (available: "
                    + (modules.available().isEmpty() ? "none" : String.join(", ", modules.available())) + ")");
        }
        try {
            // Checked again in the swap; checking first spares creating an instance for nothing.
            HookChain now = device.chain();
            checkAbsent(now, device, module);
            if (position != null) {
                checkPosition(position, now.size(), "enable");
            }
        } catch (Refused e) {
            throw new ControlException(e.getMessage());
        }
        ChainEntry entry;
        try {
            entry = modules.attach(module, device);
        } catch (ModuleException e) {
            throw new ControlException("cannot enable module " + module + " on device " + device.id() + ": " + e.getMessage());
        }
        if (!entry.name().equals(module)) {
            closeUnused(device, entry);
            throw new ControlException("module " + module + " attached itself as '" + entry.name() + "'");
        }
        HookChain next;
        try {
            next = change(device, c -> {
                checkAbsent(c, device, module);
                if (position != null) {
                    checkPosition(position, c.size(), "enable");
                }
                return c.with(entry, position == null ? modules.defaultPosition(module, c) : position);
            });
        } catch (ControlException e) {
            closeUnused(device, entry);
            throw e;
        }
        LOG.log(Level.INFO, device.label() + " module=" + module + ": enabled by the control socket at position "
                + next.names().indexOf(module) + "; chain " + next.names());
        return next;
    }

    /**
     * Takes {@code module} out of the chain; requests already inside it finish there. The module first prepares
     * ({@link io.vhostblk.hooks.ModuleInstance#prepareDetach}: a write-back cache writes back every dirty block) while
     * the guest runs on; if it cannot within {@link #DETACH_TIMEOUT_SECONDS}, the disable is refused and the chain
     * stays as it was.
     */
    synchronized HookChain disable(BlockDevice device, String module) throws ControlException {
        ChainEntry entry;
        try {
            entry = device.chain().find(module).orElseThrow(() -> notEnabled(device, module));
        } catch (Refused e) {
            throw new ControlException(e.getMessage());
        }
        prepareDetach(device, entry);
        ChainEntry[] removed = new ChainEntry[1];
        HookChain next = change(device, c -> {
            removed[0] = c.find(module).orElseThrow(() -> notEnabled(device, module));
            if (removed[0] != entry) {
                throw new Refused("module " + module + " on device " + device.id() + " was replaced while it prepared "
                        + "to detach; try again");
            }
            return c.without(module);
        });
        registry.retire(device, removed[0]);
        LOG.log(Level.INFO, device.label() + " module=" + module + ": disabled by the control socket; chain " + next.names());
        return next;
    }

    /** How long a module may take to prepare its detach (a write-back cache writing back at the speed below). */
    static final long DETACH_TIMEOUT_SECONDS = 600;
    private static final long DETACH_PROGRESS_SECONDS = 5;

    /** Waits, bounded and logging progress, for the module to be ready to leave the chain. */
    private static void prepareDetach(BlockDevice device, ChainEntry entry) throws ControlException {
        String what = device.label() + " module=" + entry.name();
        CompletableFuture<Void> ready;
        try {
            ready = entry.instance().prepareDetach();
        } catch (RuntimeException e) {
            throw new ControlException("cannot disable module " + entry.name() + " on device " + device.id()
                    + ": preparing the detach failed: " + e.getMessage());
        }
        long waited = 0;
        try {
            while (true) {
                try {
                    ready.get(DETACH_PROGRESS_SECONDS, TimeUnit.SECONDS);
                    return;
                } catch (TimeoutException e) {
                    waited += DETACH_PROGRESS_SECONDS;
                    if (waited >= DETACH_TIMEOUT_SECONDS) {
                        ready.cancel(false);
                        throw new ControlException("cannot disable module " + entry.name() + " on device " + device.id()
                                + ": not ready to detach after " + waited + " s (" + entry.instance().report()
                                + "); it stays enabled");
                    }
                    LOG.log(Level.INFO, what + ": preparing to detach for " + waited + " s: " + entry.instance().report());
                }
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new ControlException("cannot disable module " + entry.name() + " on device " + device.id() + ": "
                    + cause.getMessage() + "; it stays enabled");
        } catch (InterruptedException e) {
            ready.cancel(false);
            Thread.currentThread().interrupt();
            throw new ControlException("cannot disable module " + entry.name() + " on device " + device.id()
                    + ": interrupted while it prepared to detach; it stays enabled");
        }
    }

    /** Moves {@code module} to {@code position} (0 .. chain size - 1). */
    synchronized HookChain move(BlockDevice device, String module, int position) throws ControlException {
        HookChain next = change(device, c -> {
            if (c.find(module).isEmpty()) {
                throw notEnabled(device, module);
            }
            checkPosition(position, c.size() - 1, "move");
            return c.moved(module, position);
        });
        LOG.log(Level.INFO, device.label() + " module=" + module + ": moved by the control socket to position "
                + position + "; chain " + next.names());
        return next;
    }

    private static HookChain change(BlockDevice device, UnaryOperator<HookChain> change) throws ControlException {
        try {
            return device.updateChain(change);
        } catch (Refused e) {
            throw new ControlException(e.getMessage());
        } catch (IllegalStateException e) {
            // BlockDevice refuses a chain that would change the size a running guest sees.
            throw new ControlException(e.getMessage());
        }
    }

    private static void checkAbsent(HookChain chain, BlockDevice device, String module) {
        int at = chain.names().indexOf(module);
        if (at >= 0) {
            throw new Refused("module " + module + " is already enabled on device " + device.id() + " at position " + at
                    + " (use move to reorder)");
        }
    }

    private static void checkPosition(int position, int max, String command) {
        if (position < 0 || position > max) {
            throw new Refused(command + ": position " + position + " is outside 0.." + max
                    + " (0 is nearest the guest)");
        }
    }

    private static Refused notEnabled(BlockDevice device, String module) {
        return new Refused("module '" + ControlProtocol.shorten(module) + "' is not enabled on device " + device.id()
                + " (chain " + device.chain().names() + ")");
    }

    /** An instance that never joined the chain saw no request: it can be closed at once. */
    private static void closeUnused(BlockDevice device, ChainEntry entry) {
        try {
            entry.instance().close();
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, device.label() + " module=" + entry.name() + ": closing an unused instance failed", e);
        }
    }
}
