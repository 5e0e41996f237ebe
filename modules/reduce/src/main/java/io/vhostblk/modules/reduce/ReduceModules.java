package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Attaches {@code dedup} and {@code compress} to devices. One engine serves both names (docs/reduce.md): the first
 * name a device's chain creates opens the volume on the device's image; the second joins that volume, switches its
 * feature on, and passes every request on (its place in the chain adds nothing). Both module services live in this
 * jar, so they share this registry.
 */
final class ReduceModules {

    private static final System.Logger LOG = System.getLogger(ReduceModules.class.getName());
    static final String DEDUP = "dedup";
    static final String COMPRESS = "compress";
    static final String VERSION = "0.1.0";
    private static final Map<String, ReduceDevice> OPEN = new HashMap<>();

    private ReduceModules() {
    }

    static ModuleInstance create(String name, DeviceInfo device, ModuleSettings settings) throws ModuleException {
        settings.allowOnly("image");
        boolean dedup = name.equals(DEDUP);
        boolean compress = name.equals(COMPRESS);
        String key = device.vmName() + "\u0000" + device.deviceId();
        String who = "module " + name + ": vm " + device.vmName() + " device " + device.deviceId() + ": ";
        synchronized (OPEN) {
            ReduceDevice open = OPEN.get(key);
            if (open != null) {
                if (open.names.contains(name)) {
                    // A second chain while the first still holds the volume: two engines on one image would corrupt it.
                    throw new ModuleException(who + "the reduce volume on " + device.target() + " is already open (modules "
                            + open.names + "); detach it first");
                }
                open.join(name, dedup, compress);
                return new Joined(open, name);
            }
            if (device.readOnly()) {
                throw new ModuleException(who + "the device is read-only, but opening a reduce volume writes (recovery and a new checkpoint)");
            }
            // The volume is opened from its image file: the device's own, or the one the "image" setting names
            // (a driver that wraps the file, such as fault injection, is no file to the module).
            boolean fileDriver = device.target() != null
                    && (device.driverKind().equals("file") || device.driverKind().equals("io_uring"));
            String imageSetting = settings.string("image", fileDriver ? device.target() : null);
            if (imageSetting == null) {
                throw new ModuleException(who + "the volume is opened from the image file, and driver " + device.driverKind()
                        + " (" + device.target() + ") serves none; use the file or io_uring driver, or set image");
            }
            Path image = Path.of(imageSetting);
            HandOverStore store;
            try {
                store = new HandOverStore(FileBackingStore.open(image, false));
            } catch (IOException e) {
                throw new ModuleException(who + "cannot open image " + image + ": " + e.getMessage(), e);
            }
            ReduceVolume volume;
            try {
                volume = ReduceVolume.open(store, "vm=" + device.vmName() + " device=" + device.deviceId(),
                        ReduceVolume.Options.both().withDedup(dedup).withCompress(compress));
            } catch (ReduceException e) {
                store.close();
                throw new ModuleException(who + e.getMessage() + " (make one with: vhost-blk reduce format " + image
                        + " --logical-size SIZE)", e);
            }
            store.openingDone();
            ReduceDevice d = new ReduceDevice(key, device, name, volume, store);
            OPEN.put(key, d);
            LOG.log(System.Logger.Level.INFO, d.label + ": volume " + volume.uuid() + " of " + volume.logicalSize()
                    + " logical bytes open on " + image + ", " + volume.options());
            return d;
        }
    }

    static void forget(ReduceDevice d) {
        synchronized (OPEN) {
            OPEN.remove(d.key, d);
        }
    }

    /** The second name on a device: the volume already does its work, so its hook passes everything on. */
    private static final class Joined implements ModuleInstance {
        private final ReduceDevice device;
        private final String name;

        Joined(ReduceDevice device, String name) {
            this.device = device;
            this.name = name;
        }

        @Override
        public BlockHook openQueue(HookContext context) {
            return r -> HookAction.PASS;
        }

        /** It transforms nothing itself, but the volume it joined does. */
        @Override
        public boolean failClosed() {
            return true;
        }

        @Override
        public Map<String, Object> report() {
            return Map.of("served-by-volume-of", String.join(", ", device.names));
        }

        @Override
        public void close() {
            device.names.remove(name);
        }
    }
}
