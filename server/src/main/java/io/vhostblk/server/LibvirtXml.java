package io.vhostblk.server;

import java.nio.file.Path;
import java.util.List;

/**
 * The libvirt domain XML that attaches a vhost-blk socket as a guest's disk: a
 * {@code <disk type='vhostuser'>} with reconnect, and the shared memfd {@code <memoryBacking>} that
 * vhost-user needs (the back-end maps guest RAM). Optionally a whole minimal domain around them.
 */
record LibvirtXml(Path socket, int queues, String target, int reconnectSeconds, Domain domain) {

    /** A whole domain to wrap the disk in (for a first try, or a test); null prints the fragments only. */
    record Domain(String name, String type, long memoryBytes, int vcpus, Path emulator,
                  Path kernel, Path initrd, String cmdline) {
    }

    /** The {@code <disk>} element (indented for a domain's {@code <devices>}). */
    String disk(String indent) {
        StringBuilder b = new StringBuilder();
        b.append(indent).append("<disk type='vhostuser' device='disk'>\n");
        b.append(indent).append("  <driver name='qemu' type='raw' queues='").append(queues).append("'/>\n");
        b.append(indent).append("  <source type='unix' path='").append(escape(socket.toAbsolutePath().toString())).append("'>\n");
        if (reconnectSeconds > 0) {
            // QEMU retries the socket every so many seconds: the guest pauses while vhost-blk restarts.
            b.append(indent).append("    <reconnect enabled='yes' timeout='").append(reconnectSeconds).append("'/>\n");
        }
        b.append(indent).append("  </source>\n");
        b.append(indent).append("  <target dev='").append(escape(target)).append("' bus='virtio'/>\n");
        b.append(indent).append("</disk>\n");
        return b.toString();
    }

    /** The {@code <memoryBacking>} element: guest RAM in a shared memfd. */
    static String memoryBacking(String indent) {
        return indent + "<memoryBacking>\n"
                + indent + "  <source type='memfd'/>\n"
                + indent + "  <access mode='shared'/>\n"
                + indent + "</memoryBacking>\n";
    }

    /** What {@code vhost-blk xml} prints. */
    String render() {
        if (domain == null) {
            return "<!-- vhost-blk: add to the domain (vhost-user needs guest RAM shared with the back-end) -->\n"
                    + memoryBacking("")
                    + "<!-- vhost-blk: add under <devices> -->\n"
                    + disk("");
        }
        Domain d = domain;
        StringBuilder b = new StringBuilder();
        b.append("<domain type='").append(escape(d.type())).append("'>\n");
        b.append("  <name>").append(escape(d.name())).append("</name>\n");
        b.append("  <memory unit='KiB'>").append(d.memoryBytes() >> 10).append("</memory>\n");
        b.append("  <vcpu>").append(d.vcpus()).append("</vcpu>\n");
        b.append(memoryBacking("  "));
        b.append("  <os>\n");
        b.append("    <type arch='x86_64' machine='q35'>hvm</type>\n");
        if (d.kernel() != null) {
            b.append("    <kernel>").append(escape(d.kernel().toAbsolutePath().toString())).append("</kernel>\n");
        }
        if (d.initrd() != null) {
            b.append("    <initrd>").append(escape(d.initrd().toAbsolutePath().toString())).append("</initrd>\n");
        }
        if (d.cmdline() != null) {
            b.append("    <cmdline>").append(escape(d.cmdline())).append("</cmdline>\n");
        }
        b.append("  </os>\n");
        b.append("  <on_reboot>destroy</on_reboot>\n");
        b.append("  <devices>\n");
        if (d.emulator() != null) {
            b.append("    <emulator>").append(escape(d.emulator().toString())).append("</emulator>\n");
        }
        b.append(disk("    "));
        b.append("    <serial type='pty'/>\n");
        b.append("    <console type='pty'/>\n");
        b.append("  </devices>\n");
        b.append("</domain>\n");
        return b.toString();
    }

    /** Escapes text for an XML attribute in single quotes or element content. */
    static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> b.append("&amp;");
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '\'' -> b.append("&apos;");
                case '"' -> b.append("&quot;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    static final String HELP = """
            Usage: vhost-blk xml --socket PATH [options]
                   vhost-blk xml --config FILE DEVICE [options]

            Prints the libvirt domain XML that attaches a vhost-blk socket as a guest's
            disk: the <disk type='vhostuser'> element (with reconnect, so the guest
            pauses rather than fails while vhost-blk restarts) and the shared memfd
            <memoryBacking> the domain needs. See docs/libvirt.md.

              --socket PATH       the socket 'vhost-blk serve --socket' listens on
              --queues N          virtqueues; the same as serve --queues. Default 1
              --config FILE       take the socket and queues of device DEVICE from a
                                  host configuration (serve --config)
              --target DEV        guest device name (vda, vdb, ...). Default vda
              --reconnect SECS    QEMU reconnects to a restarted back-end every SECS
                                  seconds; 0 turns reconnection off. Default 10
              --domain NAME       print a whole minimal domain around the disk
                                  (for a first try; otherwise paste the fragments)
              --memory SIZE       with --domain: guest RAM (K, M, G suffix). Default 1G
              --vcpus N           with --domain: virtual CPUs. Default 1
              --type kvm|qemu     with --domain: hypervisor (qemu = TCG). Default kvm
              --emulator PATH     with --domain: the QEMU binary
              --kernel FILE       with --domain: boot this kernel directly
              --initrd FILE       with --domain: its initramfs
              --cmdline ARGS      with --domain: the kernel command line
              --help              this text
            """;

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

    /** Parses the arguments after {@code xml}. */
    static LibvirtXml parse(List<String> args) throws UsageException, StartupException {
        Path socket = null;
        int queues = 1;
        Path config = null;
        String device = null;
        String target = "vda";
        int reconnect = 10;
        String name = null;
        long memory = 1L << 30;
        int vcpus = 1;
        String type = "kvm";
        Path emulator = null;
        Path kernel = null;
        Path initrd = null;
        String cmdline = null;
        boolean domainOption = false;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            switch (a) {
                case "--socket" -> socket = Path.of(ServeOptions.value(args, ++i, a));
                case "--config" -> config = Path.of(ServeOptions.value(args, ++i, a));
                case "--queues" -> queues = ServeOptions.intValue(a, ServeOptions.value(args, ++i, a), 1, 64);
                case "--target" -> target = ServeOptions.value(args, ++i, a);
                case "--reconnect" -> reconnect = ServeOptions.intValue(a, ServeOptions.value(args, ++i, a), 0, 3600);
                case "--domain" -> name = ServeOptions.value(args, ++i, a);
                case "--memory" -> {
                    memory = Sizes.parse(a, ServeOptions.value(args, ++i, a));
                    domainOption = true;
                }
                case "--vcpus" -> {
                    vcpus = ServeOptions.intValue(a, ServeOptions.value(args, ++i, a), 1, 256);
                    domainOption = true;
                }
                case "--type" -> {
                    type = ServeOptions.value(args, ++i, a);
                    if (!type.equals("kvm") && !type.equals("qemu")) {
                        throw new UsageException("--type: '" + type + "' is neither kvm nor qemu");
                    }
                    domainOption = true;
                }
                case "--emulator" -> {
                    emulator = Path.of(ServeOptions.value(args, ++i, a));
                    domainOption = true;
                }
                case "--kernel" -> {
                    kernel = Path.of(ServeOptions.value(args, ++i, a));
                    domainOption = true;
                }
                case "--initrd" -> {
                    initrd = Path.of(ServeOptions.value(args, ++i, a));
                    domainOption = true;
                }
                case "--cmdline" -> {
                    cmdline = args.size() > i + 1 ? args.get(++i) : null;
                    if (cmdline == null) {
                        throw new UsageException(a + " needs a value");
                    }
                    domainOption = true;
                }
                default -> {
                    if (a.startsWith("--") || device != null) {
                        throw new UsageException("unknown option '" + a + "' (see vhost-blk xml --help)");
                    }
                    device = a;
                }
            }
        }
        if (config != null || device != null) {
            if (config == null || device == null || socket != null) {
                throw new UsageException("--config FILE and a DEVICE go together, instead of --socket");
            }
            ServeOptions d = deviceOf(config, device);
            socket = d.socket();
            queues = d.queues();
        }
        if (socket == null) {
            throw new UsageException("--socket is required");
        }
        if (!target.matches("vd[a-z]{1,3}")) {
            throw new UsageException("--target: '" + target + "' is not a virtio disk name (vda, vdb, ...)");
        }
        if (domainOption && name == null) {
            throw new UsageException("--memory, --vcpus, --type, --emulator, --kernel, --initrd and --cmdline need --domain");
        }
        if (name != null && (name.isBlank() || name.contains("/"))) {
            throw new UsageException("--domain: '" + name + "' is not a domain name");
        }
        if (memory % 1024 != 0) {
            throw new UsageException("--memory: " + memory + " bytes is not a whole number of KiB");
        }
        Domain domain = name == null ? null : new Domain(name, type, memory, vcpus, emulator, kernel, initrd, cmdline);
        return new LibvirtXml(socket, queues, target, reconnect, domain);
    }
}
