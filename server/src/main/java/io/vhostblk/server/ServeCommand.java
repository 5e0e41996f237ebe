package io.vhostblk.server;

import io.vhostblk.linux.LinuxException;
import io.vhostblk.linux.ServiceNotifier;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * {@code vhost-blk serve}: one device from the command line, or every device of a host
 * configuration ({@code --config}), until SIGTERM or SIGINT; devices can be added and removed
 * through the control socket meanwhile.
 */
@Command(name = "serve", header = "serve a disk image over a vhost-user socket", sortOptions = false,
        customSynopsis = {"vhost-blk serve --socket PATH --disk FILE [options]",
                "       vhost-blk serve --config FILE [--control PATH] [--metrics [ADDR:]PORT]"},
        description = {"Serves a raw disk image (or block device) to one QEMU/KVM guest as a vhost-user-"
                + "blk device, or every device of a host configuration. QEMU connects to the Unix "
                + "socket; the command prints the QEMU arguments that attach the disk. A device of "
                + "a configuration that cannot start is logged and left out; the others are served.", ""},
        footer = {"", "Stops cleanly on SIGTERM or SIGINT: in-flight requests finish, the image is synced, the",
                "socket file is removed."})
final class ServeCommand implements Callable<Integer> {
    private static final System.Logger LOG = System.getLogger(ServeCommand.class.getName());

    /** What a command line with --config may add to the configuration. */
    private static final Set<String> CONFIG_OPTIONS = Set.of("--config", "--control", "--metrics");

    @Mixin
    CommandKit.HelpOption help;

    @Spec
    CommandSpec spec;

    @Mixin
    DeviceOptions device = new DeviceOptions();

    @Option(names = "--config", paramLabel = "FILE", order = 0,
            description = "serve every [device ID] of a host configuration (docs/operations.md) in one "
                    + "process; then only --control and --metrics may be given here, and they override "
                    + "the file's")
    Path config;

    private Plan plan;
    private PrintWriter out;

    /** What to serve: the devices, and the control socket (or null). */
    private record Plan(List<ServeOptions> devices, Path control, InetSocketAddress metrics, boolean fromConfig) {
    }

    @Override
    public Integer call() throws CommandUsageException, StartupException {
        plan = plan();
        out = spec.commandLine().getOut();
        return run();
    }

    /** Parses {@code serve}'s arguments (for tests): {@code --config FILE [--control PATH]}, or one device's options. */
    static ServeCommand parse(List<String> args, PrintStream out) throws UsageException, StartupException {
        try {
            ServeCommand command = CommandKit.parse(new ServeCommand(), args);
            command.plan = command.plan();
            command.out = new PrintWriter(out, true);
            return command;
        } catch (UsageException e) {
            throw e;
        } catch (CommandUsageException e) {
            throw new UsageException(e.getMessage());
        }
    }

    private Plan plan() throws CommandUsageException, StartupException {
        if (config == null) {
            ServeOptions options = device.options();
            return new Plan(List.of(options), options.control(), options.metrics(), false);
        }
        for (OptionSpec o : spec.commandLine().getParseResult().matchedOptions()) {
            String name = o.longestName();
            if (!CONFIG_OPTIONS.contains(name)) {
                throw new UsageException("with --config, only --control and --metrics may be given on the command line ("
                        + name + " belongs in a [device ID] section)");
            }
        }
        HostConfig host;
        try {
            host = HostConfig.load(config);
        } catch (HostConfig.ConfigException e) {
            throw new StartupException(e.getMessage(), e);
        }
        List<ServeOptions> devices = host.devices().stream().map(HostConfig.Device::options).toList();
        return new Plan(devices, device.control != null ? device.control : host.control(),
                device.metrics != null ? device.metrics : host.metrics(), true);
    }

    int run() throws StartupException {
        // Before any socket listens: a SIGTERM that comes as soon as one does (systemd, a script) stops cleanly.
        CountDownLatch stop = new CountDownLatch(1);
        Signals.onTermination(stop::countDown);
        DeviceRegistry registry = new DeviceRegistry();
        Exports exports = new Exports(registry);
        int failed = 0;
        for (ServeOptions options : plan.devices()) {
            try {
                Export e = exports.start(options);
                out.println(e.qemuArguments());
            } catch (StartupException e) {
                if (!plan.fromConfig()) {
                    throw e;
                }
                // One broken device (bad image, refused module) must not keep the others from their guests.
                LOG.log(Level.ERROR, "device " + options.deviceId() + " not served: " + e.getMessage());
                failed++;
            }
        }
        out.flush();
        if (exports.ids().isEmpty() && plan.fromConfig()) {
            throw new StartupException("no device of the host configuration could start (" + failed + " failed; see the log)", null);
        }
        ControlServer control;
        try {
            control = plan.control() == null ? null : ControlServer.start(plan.control(),
                    new ControlProtocol(registry, singlePolicy(registry), exports));
        } catch (IOException e) {
            exports.stopAll();
            throw new StartupException("cannot listen on the control socket " + plan.control() + ": " + e.getMessage(), e);
        }
        MetricsExporter metrics;
        try {
            metrics = plan.metrics() == null ? null : MetricsExporter.start(plan.metrics(), registry);
        } catch (IOException e) {
            closeControl(control);
            exports.stopAll();
            throw new StartupException("cannot serve metrics on " + plan.metrics().getHostString() + ":"
                    + plan.metrics().getPort() + ": " + e.getMessage(), e);
        }
        notifyServiceManager("READY=1\nSTATUS=serving " + String.join(", ", exports.ids()));
        try {
            stop.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.log(Level.INFO, "shutting down " + String.join(", ", exports.ids()));
        notifyServiceManager("STOPPING=1");
        closeControl(control);
        if (metrics != null) {
            metrics.close();
        }
        return exports.stopAll() ? 0 : 1;
    }

    /**
     * The module source {@code ctl modules} lists without a device: the one policy of a
     * single-device serve; with a host configuration each device has its own (ctl modules DEVICE).
     */
    private ModuleSource singlePolicy(DeviceRegistry registry) {
        if (plan.fromConfig() || registry.devices().isEmpty()) {
            return ModuleSource.NONE;
        }
        ModuleSource own = registry.modules(registry.devices().getFirst());
        return own != null ? own : ModuleSource.NONE;
    }

    /**
     * Tells systemd (a {@code Type=notify} unit, {@code $NOTIFY_SOCKET} set) how far we got. A failure
     * is logged, not fatal: the unit's start timeout reports a missing READY=1 by itself.
     */
    private static void notifyServiceManager(String state) {
        ServiceNotifier notifier = ServiceNotifier.fromEnvironment();
        if (notifier == null) {
            return;
        }
        try {
            notifier.send(state);
        } catch (LinuxException e) {
            LOG.log(Level.WARNING, "cannot notify the service manager (" + state.lines().findFirst().orElse(state)
                    + "): " + e.getMessage());
        }
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
}
