package io.vhostblk.server;

import io.vhostblk.hooks.ByteSizes;
import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code vhost-blk xml}: prints the libvirt XML ({@link LibvirtXml}) that attaches a vhost-blk socket as a disk. */
@Command(name = "xml", header = "print the libvirt XML that attaches a vhost-blk socket as a disk", sortOptions = false,
        customSynopsis = {"vhost-blk xml --socket PATH [options]", "       vhost-blk xml --config FILE DEVICE [options]"},
        description = {"Prints the libvirt domain XML that attaches a vhost-blk socket as a guest's "
                + "disk: the <disk type='vhostuser'> element (with reconnect, so the guest pauses "
                + "rather than fails while vhost-blk restarts) and the shared memfd <memoryBacking>"
                + " the domain needs. See docs/libvirt.md.", ""})
final class XmlCommand implements Callable<Integer> {
    @Option(names = "--socket", paramLabel = "PATH", order = 1,
            description = "the socket 'vhost-blk serve --socket' listens on")
    Path socket;

    @Option(names = "--queues", paramLabel = "N", order = 2, description = "virtqueues; the same as serve --queues. Default 1")
    int queues = 1;

    @Option(names = "--config", paramLabel = "FILE", order = 3,
            description = "take the socket and queues of device DEVICE from a host configuration (serve --config)")
    Path config;

    @Parameters(paramLabel = "DEVICE", arity = "0..1", description = "with --config: the device's id")
    String device;

    @Option(names = "--target", paramLabel = "DEV", order = 4, description = "guest device name (vda, vdb, ...). Default vda")
    String target = "vda";

    @Option(names = "--reconnect", paramLabel = "SECS", order = 5,
            description = "QEMU reconnects to a restarted back-end every SECS seconds; 0 turns reconnection off. Default 10")
    int reconnect = 10;

    @Option(names = "--domain", paramLabel = "NAME", order = 6,
            description = "print a whole minimal domain around the disk (for a first try; otherwise paste the fragments)")
    String domain;

    @Option(names = "--memory", paramLabel = "SIZE", converter = ByteSizes.Converter.class, order = 7,
            description = "with --domain: guest RAM (K, M, G suffix). Default 1G")
    Long memory;

    @Option(names = "--vcpus", paramLabel = "N", order = 8, description = "with --domain: virtual CPUs. Default 1")
    Integer vcpus;

    @Option(names = "--type", paramLabel = "kvm|qemu", order = 9, description = "with --domain: hypervisor (qemu = TCG). Default kvm")
    String type;

    @Option(names = "--emulator", paramLabel = "PATH", order = 10, description = "with --domain: the QEMU binary")
    Path emulator;

    @Option(names = "--kernel", paramLabel = "FILE", order = 11, description = "with --domain: boot this kernel directly")
    Path kernel;

    @Option(names = "--initrd", paramLabel = "FILE", order = 12, description = "with --domain: its initramfs")
    Path initrd;

    @Option(names = "--cmdline", paramLabel = "ARGS", order = 13, description = "with --domain: the kernel command line")
    String cmdline;

    @Mixin
    CommandKit.HelpOption help;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws CommandUsageException, StartupException {
        spec.commandLine().getOut().print(xml().render());
        return 0;
    }

    /** Parses the arguments after {@code xml} (for tests). */
    static LibvirtXml parse(List<String> args) throws UsageException, StartupException {
        try {
            return CommandKit.parse(new XmlCommand(), args).xml();
        } catch (UsageException e) {
            throw e;
        } catch (CommandUsageException e) {
            throw new UsageException(e.getMessage());
        }
    }

    /** The options checked together. */
    LibvirtXml xml() throws CommandUsageException, StartupException {
        Path path = socket;
        int queueCount = queues;
        if (config != null || device != null) {
            if (config == null || device == null || socket != null) {
                throw new UsageException("--config FILE and a DEVICE go together, instead of --socket");
            }
            ServeOptions d = deviceOf(config, device);
            path = d.socket();
            queueCount = d.queues();
        }
        CommandKit.checkRange("--queues", queueCount, 1, 64);
        CommandKit.checkRange("--reconnect", reconnect, 0, 3600);
        if (path == null) {
            throw new UsageException("--socket is required");
        }
        if (!target.matches("vd[a-z]{1,3}")) {
            throw new UsageException("--target: '" + target + "' is not a virtio disk name (vda, vdb, ...)");
        }
        boolean domainOption = memory != null || vcpus != null || type != null || emulator != null || kernel != null
                || initrd != null || cmdline != null;
        if (domainOption && domain == null) {
            throw new UsageException("--memory, --vcpus, --type, --emulator, --kernel, --initrd and --cmdline need --domain");
        }
        if (domain == null) {
            return new LibvirtXml(path, queueCount, target, reconnect, null);
        }
        if (domain.isBlank() || domain.contains("/")) {
            throw new UsageException("--domain: '" + domain + "' is not a domain name");
        }
        long bytes = memory != null ? memory : 1L << 30;
        if (bytes % 1024 != 0) {
            throw new UsageException("--memory: " + bytes + " bytes is not a whole number of KiB");
        }
        int cpus = vcpus != null ? vcpus : 1;
        CommandKit.checkRange("--vcpus", cpus, 1, 256);
        String hypervisor = type != null ? type : "kvm";
        if (!hypervisor.equals("kvm") && !hypervisor.equals("qemu")) {
            throw new UsageException("--type: '" + hypervisor + "' is neither kvm nor qemu");
        }
        return new LibvirtXml(path, queueCount, target, reconnect,
                new LibvirtXml.Domain(domain, hypervisor, bytes, cpus, emulator, kernel, initrd, cmdline));
    }

    /** The options of {@code device} in the host configuration {@code config}. */
    private static ServeOptions deviceOf(Path config, String device) throws UsageException, StartupException {
        HostConfig host;
        try {
            host = HostConfig.load(config);
        } catch (HostConfig.ConfigException e) {
            throw new StartupException(e.getMessage(), e);
        }
        List<String> ids = host.devices().stream().map(d -> d.options().deviceId()).toList();
        return host.devices().stream().map(HostConfig.Device::options).filter(o -> o.deviceId().equals(device)).findFirst()
                .orElseThrow(() -> new UsageException("no device '" + device + "' in " + config + " (devices: "
                        + String.join(", ", ids) + ")"));
    }
}
