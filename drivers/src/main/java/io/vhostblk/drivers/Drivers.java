package io.vhostblk.drivers;

import java.nio.file.Path;

/** Builds a {@link BlockDriver} by kind, choosing io_uring when the kernel allows it. */
public final class Drivers {
    private static final System.Logger LOG = System.getLogger(Drivers.class.getName());

    private Drivers() {
    }

    /**
     * Opens a driver.
     *
     * @param path     the image or block device (ignored by RAM and null); for rbd {@code rbd:POOL/IMAGE[@SNAP]}
     * @param size     bytes; -1 takes an existing image's size (RAM and null need a size)
     * @param readOnly refuse writes (file-backed kinds)
     */
    public static BlockDriver open(DriverKind kind, Path path, long size, boolean readOnly, DriverOptions options)
            throws DriverException {
        return switch (kind) {
            case FILE -> FileDriver.open(path, size, readOnly);
            case IO_URING -> IoUringDriver.open(path, size, readOnly, options);
            case AUTO -> {
                IoUringProbe probe = IoUringDriver.probe();
                if (probe.available()) {
                    yield IoUringDriver.open(path, size, readOnly, options);
                }
                LOG.log(System.Logger.Level.WARNING, "serving {0} with the synchronous file driver: {1}", path, probe.reason());
                yield FileDriver.open(path, size, readOnly);
            }
            case RAM -> RamDriver.create(size);
            case NULL -> NullDriver.create(size, options.readZeroes());
            case RBD -> rbd(path, size, readOnly, options.rbd());
        };
    }

    private static BlockDriver rbd(Path path, long size, boolean readOnly, RbdClient client) throws DriverException {
        RbdImageName name;
        try {
            name = RbdImageName.parse(String.valueOf(path));
        } catch (IllegalArgumentException e) {
            throw new DriverException(e.getMessage(), e);
        }
        RbdDriver driver = RbdDriver.open(name, readOnly, client);
        if (size >= 0 && size != driver.capacity()) {
            long actual = driver.capacity();
            driver.close();
            throw new DriverException(name + ": the image has " + actual + " bytes, not the " + size + " asked for "
                    + "(leave the size out to take the image's; resize with 'rbd resize')");
        }
        return driver;
    }
}
