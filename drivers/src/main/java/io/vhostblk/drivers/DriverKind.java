package io.vhostblk.drivers;

import java.util.Locale;

/** The driver kinds {@link Drivers#open} can build, by their command-line names. */
public enum DriverKind {
    /** io_uring when the kernel allows it, else the file driver (with a logged reason). */
    AUTO,
    /** io_uring only: fails with the kernel's reason when io_uring is unavailable. */
    IO_URING,
    /** Synchronous preadv/pwritev. */
    FILE,
    /** A memory-backed disk that vanishes with the process. */
    RAM,
    /** Discards writes; reads return without data (or zeros). */
    NULL,
    /** A Ceph RBD image through librbd ({@code rbd:POOL/IMAGE[@SNAP]}). */
    RBD;

    /** Parses {@code auto}, {@code io_uring} (or {@code io-uring}, {@code uring}), {@code file}, {@code ram}, {@code null}, {@code rbd}. */
    public static DriverKind parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "auto" -> AUTO;
            case "io_uring", "io-uring", "uring" -> IO_URING;
            case "file" -> FILE;
            case "ram", "memory" -> RAM;
            case "null" -> NULL;
            case "rbd" -> RBD;
            default -> throw new IllegalArgumentException(
                    "unknown driver '" + name + "'; expected auto, io_uring, file, ram, null or rbd");
        };
    }
}
