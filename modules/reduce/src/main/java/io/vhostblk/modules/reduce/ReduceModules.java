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
    /** As {@code vhost-blk reduce format} makes them. */
    private static final int DEFAULT_BLOCK_SIZE = 4096;
    private static final Map<String, ReduceDevice> OPEN = new HashMap<>();

    private ReduceModules() {
    }

    static ModuleInstance create(String name, DeviceInfo device, ModuleSettings settings) throws ModuleException {
        settings.allowOnly("image", "logical-size", "block-size", "worker");
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
            Geometry geometry = geometry(who, device, settings);
            ReduceDevice d = new ReduceDevice(key, device, name, geometry,
                    ReduceVolume.Options.both().withDedup(dedup).withCompress(compress), worker(settings));
            OPEN.put(key, d);
            LOG.log(System.Logger.Level.INFO, d.label + ": " + geometry.logicalBytes() + " logical bytes in blocks of "
                    + geometry.blockSize() + " B (from the " + geometry.source() + "); the volume opens through the layers "
                    + "beneath on the first queue, before it serves a request");
            return d;
        }
    }

    /** What the guest is shown, known before the volume opens: the chain's geometry is fixed when it is built. */
    record Geometry(long logicalBytes, int blockSize, String source) {
    }

    /**
     * The volume's geometry: from the settings {@code logical-size} (and {@code block-size}) when given (needed when
     * no image file holds the plain superblock: crypt beneath, RBD), else from the superblock in the device's image
     * file or the file the setting {@code image} names. The volume's own superblock, read through the layers
     * beneath when it opens, must agree.
     */
    private static Geometry geometry(String who, DeviceInfo device, ModuleSettings settings) throws ModuleException {
        if (settings.string("logical-size", null) != null) {
            long block = settings.number("block-size", DEFAULT_BLOCK_SIZE, Superblock.MIN_BLOCK_SIZE, 1 << 20);
            if (Long.bitCount(block) != 1) {
                throw settings.error("block-size", block + " is not a power of two");
            }
            long logical = settings.number("logical-size", 0, block, Long.MAX_VALUE);
            if (logical % block != 0) {
                throw settings.error("logical-size", logical + " is not a multiple of the block size " + block);
            }
            return new Geometry(logical, (int) block, "setting logical-size");
        }
        if (settings.string("block-size", null) != null) {
            throw settings.error("block-size", "only with logical-size (otherwise the volume's superblock gives both)");
        }
        boolean fileDriver = device.target() != null
                && (device.driverKind().equals("file") || device.driverKind().equals("io_uring"));
        String imageSetting = settings.string("image", fileDriver ? device.target() : null);
        if (imageSetting == null) {
            throw new ModuleException(who + "driver " + device.driverKind() + " (" + device.target() + ") has no image file "
                    + "to read the volume's size from; set logical-size (and block-size) as formatted, or image");
        }
        Path image = Path.of(imageSetting);
        try (FileBackingStore file = FileBackingStore.open(image, true)) {
            Superblock sb = VolumeState.readSuperblock(file, image.toString());
            return new Geometry(sb.logicalBlocks() * sb.blockSize(), sb.blockSize(), "superblock of " + image);
        } catch (ReduceException e) {
            throw new ModuleException(who + e.getMessage() + " (make one with: vhost-blk reduce format " + image
                    + " --logical-size SIZE; a volume beneath another layer such as crypt: set logical-size)", e);
        } catch (IOException e) {
            throw new ModuleException(who + "cannot open image " + image + ": " + e.getMessage(), e);
        }
    }

    /**
     * Whether hashing and compression get a thread of their own (setting {@code worker}: {@code off}, the default,
     * {@code on}, or {@code auto}: on when the process may run on two CPUs or more). Off by default: measured here
     * the loop was mostly waiting for the disk, not short of CPU, and the hand-off costs a wake-up per batch
     * (docs/benchmarks.md, run E); on a host with idle cores and a CPU-bound queue, {@code on} takes SHA-256 and
     * LZ4 off the loop.
     */
    static boolean worker(ModuleSettings settings) throws ModuleException {
        String w = settings.string("worker", "off");
        return switch (w) {
            case "on" -> true;
            case "off" -> false;
            case "auto" -> Runtime.getRuntime().availableProcessors() >= 2;
            default -> throw settings.error("worker", "'" + w + "' is not one of auto, on, off");
        };
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
