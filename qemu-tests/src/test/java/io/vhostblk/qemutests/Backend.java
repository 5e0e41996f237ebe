package io.vhostblk.qemutests;

/** The back-ends every guest scenario runs against. */
enum Backend {
    /** qemu-storage-daemon: the reference that proves the harness. */
    QSD {
        @Override
        StorageBackend start(ExportSpec spec) {
            return QemuStorageDaemon.start(spec);
        }
    },
    /** The vhost-blk server under test. */
    VHOST_BLK {
        @Override
        StorageBackend start(ExportSpec spec) {
            return VhostBlkServer.start(spec);
        }
    };

    /** Starts this back-end for {@code spec}; returns once it listens on the socket. */
    abstract StorageBackend start(ExportSpec spec);
}
