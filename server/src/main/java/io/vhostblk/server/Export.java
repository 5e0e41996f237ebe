package io.vhostblk.server;

import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverKind;
import io.vhostblk.drivers.DriverOptions;
import io.vhostblk.drivers.Drivers;
import io.vhostblk.drivers.FaultyDriver;
import io.vhostblk.frontend.QueueTuning;
import io.vhostblk.frontend.VhostUserServer;
import io.vhostblk.frontend.VirtioBlkDevice;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;

/**
 * One device served on its vhost-user socket: its policy's modules, its driver, the compat-lib
 * device and the vhost-user server, from start-up to a drained, synced stop. A process holds one
 * (single-device {@code serve}) or many ({@code serve --config}, {@code ctl device-add}).
 */
final class Export {
    private static final System.Logger LOG = System.getLogger(Export.class.getName());
    /** Size of an image created without a size. */
    static final long DEFAULT_NEW_IMAGE_SIZE = 8L << 30;

    private final ServeOptions options;
    private final ModuleSetup modules;
    private final BlockDriver driver;
    private final BlockDevice device;
    private final DeviceRegistry registry;
    private final VhostUserServer server;

    private Export(ServeOptions options, ModuleSetup modules, BlockDriver driver, BlockDevice device,
                   DeviceRegistry registry, VhostUserServer server) {
        this.options = options;
        this.modules = modules;
        this.driver = driver;
        this.device = device;
        this.registry = registry;
        this.server = server;
    }

    /**
     * Opens the device of {@code options} and listens on its socket; registers it with
     * {@code registry} (its own module source). On failure everything opened so far is closed.
     */
    static Export start(ServeOptions options, DeviceRegistry registry) throws StartupException {
        if (registry.contains(options.deviceId())) {
            throw new StartupException("a device with id '" + options.deviceId() + "' is already served", null);
        }
        long size = options.size();
        if (size < 0 && options.driver() != DriverKind.RAM && options.driver() != DriverKind.NULL
                && options.driver() != DriverKind.RBD && !Files.exists(options.disk())) {
            size = DEFAULT_NEW_IMAGE_SIZE;
        }
        // The policy, the compat-lib pin and the module digests are checked before anything is opened.
        ModuleSetup modules = ModuleSetup.start(options);
        BlockDriver driver;
        try {
            driver = Drivers.open(options.driver(), options.disk(), size, options.readOnly(),
                    DriverOptions.DEFAULTS.withDirect(options.direct()).withReadZeroes(options.readZeroes())
                            .withRbd(options.rbd()).withSubmitBatch(options.submitBatch()));
            if (options.inject() != null) {
                driver = FaultyDriver.wrap(driver, options.inject(), options.deviceId());
            }
        } catch (DriverException e) {
            modules.abandon();
            throw new StartupException(options.deviceId() + ": " + e.getMessage(), e);
        }
        BlockDevice device = new BlockDevice(options.deviceId(), modules.vmName(), driver, options.writeback());
        try {
            modules.attach(device);
        } catch (StartupException e) {
            driver.close();
            modules.abandon();
            throw e;
        }
        VirtioBlkDevice virtio = new VirtioBlkDevice(device, options.queues(), options.queueSize(),
                new QueueTuning(options.pollMicros(), options.pollInflightMicros(), options.kickOnRing()));
        try {
            registry.register(device, ModuleSource.of(modules.catalog()));
        } catch (IllegalArgumentException e) {
            modules.stopped(device);
            driver.close();
            throw new StartupException(e.getMessage(), e);
        }
        VhostUserServer server;
        try {
            server = VhostUserServer.start(device.id(), options.socket(), false, virtio);
        } catch (IOException e) {
            registry.stopped(device);
            modules.stopped(device);
            driver.close();
            throw new StartupException(device.label() + ": cannot listen on " + options.socket() + ": " + e.getMessage(), e);
        }
        LOG.log(Level.INFO, device.label() + ": serving " + driver.kind() + " " + driver.target() + " ("
                + ByteSizes.format(driver.capacity()) + (driver.readOnly() ? ", read-only" : "") + ", "
                + options.queues() + " queue(s)) on " + options.socket());
        return new Export(options, modules, driver, device, registry, server);
    }

    String id() {
        return device.id();
    }

    ServeOptions options() {
        return options;
    }

    BlockDevice device() {
        return device;
    }

    /**
     * Stops serving: closes the socket and the front-end's session (queues finish their in-flight
     * requests), closes the modules, syncs and closes the driver. Returns false if the sync failed.
     */
    boolean stop() {
        LOG.log(Level.INFO, device.label() + ": stopping");
        try {
            server.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, device.label() + ": closing the socket: " + e.getMessage());
        }
        registry.stopped(device);
        modules.stopped(device);
        boolean synced = true;
        try {
            driver.sync();
        } catch (DriverException e) {
            LOG.log(Level.ERROR, device.label() + ": " + e.getMessage());
            synced = false;
        }
        driver.close();
        LOG.log(Level.INFO, device.label() + ": stopped");
        return synced;
    }

    /** The QEMU options that attach this disk, for the operator to paste. */
    String qemuArguments() {
        String chardev = "vhostblk-" + options.deviceId().replaceAll("[^A-Za-z0-9_-]", "_");
        return "vhost-blk: attach " + options.deviceId() + " with QEMU options:\n"
                + "  -object memory-backend-memfd,id=mem,size=<guest RAM, e.g. 1G>,share=on -M q35,memory-backend=mem -m <same size>\n"
                + "  -chardev socket,id=" + chardev + ",path=" + options.socket().toAbsolutePath() + "\n"
                + "  -device vhost-user-blk-pci,chardev=" + chardev + ",num-queues=" + options.queues();
    }
}
