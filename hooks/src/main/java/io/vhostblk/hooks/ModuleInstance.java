package io.vhostblk.hooks;

import java.util.Map;
import java.util.concurrent.CompletableFuture;

/** A module attached to one device: hands out a hook per queue and reports its own statistics. */
public interface ModuleInstance extends AutoCloseable {

    /** The hook for one queue; called on that queue's event loop the first time the module is in its chain. */
    BlockHook openQueue(HookContext context);

    /**
     * The device size this module shows to the layers above, given the size beneath it; a module
     * that keeps a header or metadata on the device (LUKS, block maps) shows less. Geometry
     * cannot change while a guest uses the device, so such modules attach before it starts.
     */
    default long capacity(long capacityBelow) {
        return capacityBelow;
    }

    /**
     * Whether the device beneath may change size ({@code vhost-blk ctl resize}) while this module
     * is attached; afterwards {@link #capacity} is asked again with the new size below. A module
     * whose layout fixes the size it shows (a block map formatted for a logical size) says false,
     * and the resize is refused. Modules that pass the size through, or keep a fixed header and
     * show the rest (LUKS), can leave the default.
     */
    default boolean allowsResize() {
        return true;
    }

    /**
     * The smallest unit of I/O this module serves, in bytes (a power of two, 512 or more): a
     * module that encrypts 4096-byte sectors cannot serve a 512-byte write. The guest is told the
     * largest unit of the chain as its logical block size. Fixed once a guest uses the device.
     */
    default int logicalBlockSize() {
        return 512;
    }

    /**
     * Whether the device must stop serving I/O when this module fails, rather than go on without
     * it: a module that transforms what is stored (encryption, compression, remapping) cannot be
     * bypassed without exposing or corrupting data. Such a device then fails every request until
     * it is restarted.
     */
    default boolean failClosed() {
        return false;
    }

    /** Module-specific statistics for the control socket (names to numbers or nested maps). */
    default Map<String, Object> report() {
        return Map.of();
    }

    /**
     * Called before the server takes this module out of a running chain ({@code ctl disable}), while the queues still
     * serve the guest. A module that holds the only copy of some data (a write-back cache's dirty blocks) writes it
     * through the layers below and completes the future once taking it out loses nothing and serves nothing stale;
     * it completes exceptionally if it cannot (the detach is then refused and the module stays). The server waits a
     * bounded time and cancels the future if it gives up: the module then goes on as before.
     */
    default CompletableFuture<Void> prepareDetach() {
        return CompletableFuture.completedFuture(null);
    }

    /** Detached from the device and no request of the device is in it any more. */
    @Override
    default void close() {
    }
}
