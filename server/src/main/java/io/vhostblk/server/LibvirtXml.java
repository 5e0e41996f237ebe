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
}
