package io.vhostblk.qemutests;

import java.nio.file.Path;

/** What a back-end must serve: an image file of {@code size} bytes over a vhost-user socket, and where it logs. */
record ExportSpec(Path image, long size, int queues, boolean readOnly, Path socket, Path log) {
}
