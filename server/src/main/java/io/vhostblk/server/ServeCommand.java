package io.vhostblk.server;

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
import java.io.PrintStream;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.util.concurrent.CountDownLatch;

/** {@code vhost-blk serve}: one disk, one vhost-user socket, until SIGTERM or SIGINT. */
final class ServeCommand {
    private static final System.Logger LOG = System.getLogger(ServeCommand.class.getName());
    /** Size of an image created without --size. */
    static final long DEFAULT_NEW_IMAGE_SIZE = 8L << 30;

    private final ServeOptions options;
    private final PrintStream out;

    ServeCommand(ServeOptions options, PrintStream out) {
        this.options = options;
        this.out = out;
    }

    int run() throws StartupException {
        long size = options.size();
        if (size < 0 && options.driver() != DriverKind.RAM && options.driver() != DriverKind.NULL
                && !Files.exists(options.disk())) {
            size = DEFAULT_NEW_IMAGE_SIZE;
        }
        // The policy, the compat-lib pin and the module digests are checked before anything is opened.
        ModuleSetup modules = ModuleSetup.start(options);
        BlockDriver driver;
        try {
            driver = Drivers.open(options.driver(), options.disk(), size, options.readOnly(),
                    DriverOptions.DEFAULTS.withDirect(options.direct()).withReadZeroes(options.readZeroes()));
            if (options.inject() != null) {
                driver = FaultyDriver.wrap(driver, options.inject(), options.deviceId());
            }
        } catch (DriverException e) {
            modules.abandon();
            throw new StartupException(e.getMessage(), e);
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
                new QueueTuning(options.pollMicros(), options.kickOnRing()));
        CountDownLatch stop = new CountDownLatch(1);
        Signals.onTermination(stop::countDown);
        DeviceRegistry registry = new DeviceRegistry();
        registry.register(device);
        ControlServer control;
        try {
            control = startControl(registry, modules.catalog());
        } catch (IOException e) {
            modules.stopped(device);
            driver.close();
            throw new StartupException("cannot listen on the control socket " + options.control() + ": " + e.getMessage(), e);
        }
        VhostUserServer server;
        try {
            server = VhostUserServer.start(device.id(), options.socket(), false, virtio);
        } catch (IOException e) {
            closeControl(control);
            modules.stopped(device);
            driver.close();
            throw new StartupException("cannot listen on " + options.socket() + ": " + e.getMessage(), e);
        }
        LOG.log(Level.INFO, device.label() + ": serving " + driver.kind() + " " + driver.target() + " ("
                + Sizes.format(driver.capacity()) + (driver.readOnly() ? ", read-only" : "") + ", "
                + options.queues() + " queue(s)) on " + options.socket());
        out.println(qemuArguments());
        out.flush();
        try {
            stop.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.log(Level.INFO, device.label() + ": shutting down");
        int status = 0;
        closeControl(control);
        try {
            server.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, device.label() + ": closing the socket: " + e.getMessage());
        }
        registry.stopped(device);
        modules.stopped(device);
        try {
            driver.sync();
        } catch (DriverException e) {
            LOG.log(Level.ERROR, device.label() + ": " + e.getMessage());
            status = 1;
        }
        driver.close();
        LOG.log(Level.INFO, device.label() + ": stopped");
        return status;
    }

    /** The control socket of --control, or null without it. */
    private ControlServer startControl(DeviceRegistry registry, ModuleCatalog catalog) throws IOException {
        if (options.control() == null) {
            return null;
        }
        return ControlServer.start(options.control(), new ControlProtocol(registry, ModuleSource.of(catalog)));
    }

    private static void closeControl(ControlServer control) {
        if (control == null) {
            return;
        }
        try {
            control.close();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "closing the control socket " + control.path() + ": " + e.getMessage());
        }
    }

    /** The QEMU options that attach this disk, for the operator to paste. */
    String qemuArguments() {
        return "vhost-blk: attach with QEMU options:\n"
                + "  -object memory-backend-memfd,id=mem,size=<guest RAM, e.g. 1G>,share=on -M q35,memory-backend=mem -m <same size>\n"
                + "  -chardev socket,id=" + chardevId() + ",path=" + options.socket().toAbsolutePath() + "\n"
                + "  -device vhost-user-blk-pci,chardev=" + chardevId() + ",num-queues=" + options.queues();
    }

    private String chardevId() {
        return "vhostblk-" + options.deviceId().replaceAll("[^A-Za-z0-9_-]", "_");
    }
}
