package io.vhostblk.qemutests;

import java.nio.file.Path;
import java.util.List;

/**
 * What a back-end must serve: an image file of {@code size} bytes over a vhost-user socket, and where
 * it logs; {@code serverArgs} are extra {@code vhost-blk serve} options (other back-ends ignore them).
 */
record ExportSpec(Path image, long size, int queues, boolean readOnly, Path socket, Path log, List<String> serverArgs) {
    ExportSpec(Path image, long size, int queues, boolean readOnly, Path socket, Path log) {
        this(image, size, queues, readOnly, socket, log, List.of());
    }
}
