package io.vhostblk.qemutests;

import java.util.List;

/** The reference back-end, qemu-storage-daemon's vhost-user-blk export: proves the harness itself. */
final class QemuStorageDaemon extends ProcessBackend {
    private QemuStorageDaemon(ExportSpec spec, List<String> command) {
        super("qemu-storage-daemon", spec, command);
    }

    /** Starts qemu-storage-daemon exporting {@code spec}'s image and waits for its socket. */
    static QemuStorageDaemon start(ExportSpec spec) {
        String qsd = HostTools.program("qemu-storage-daemon", "qemu-system-x86")
                .toString();
        // discard=unmap passes guest discards to the file as hole punches, which read back as zeros.
        String blockdev = "driver=file,node-name=file0,filename=" + spec.image() + ",discard=unmap"
                + (spec.readOnly() ? ",read-only=on" : "");
        String export = "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=" + spec.socket()
                + ",writable=" + (spec.readOnly() ? "off" : "on") + ",num-queues=" + spec.queues();
        return new QemuStorageDaemon(spec, List.of(qsd, "--blockdev", blockdev, "--export", export));
    }
}
