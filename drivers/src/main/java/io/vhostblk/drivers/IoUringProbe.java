package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.IoUring;
import io.vhostblk.linux.LinuxException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether this process may use io_uring, and if not why and how to enable it.
 *
 * @param available true when a ring could be set up
 * @param errno     the kernel's refusal (0 when available)
 * @param reason    a sentence for the log: what refused io_uring and what to change
 */
public record IoUringProbe(boolean available, int errno, String reason) {
    private static final Path DISABLED_SYSCTL = Path.of("/proc/sys/kernel/io_uring_disabled");

    /** Sets up and tears down a two-entry ring. */
    public static IoUringProbe run() {
        try (IoUring ring = IoUring.create(2, 4)) {
            return new IoUringProbe(true, 0, "io_uring available (features 0x" + Integer.toHexString(ring.features()) + ")");
        } catch (LinuxException e) {
            return new IoUringProbe(false, e.errno(), explain(e.errno()));
        }
    }

    /** Turns io_uring_setup's errno into the cause and the fix. */
    static String explain(int errno) {
        return "io_uring_setup failed with " + Errno.describe(errno) + ": " + switch (errno) {
            case Errno.ENOSYS -> "this kernel has no io_uring (older than 5.1, or built without CONFIG_IO_URING); "
                    + "the io_uring driver needs Linux 5.6 or later";
            case Errno.EPERM -> "io_uring is disabled for this process: sysctl kernel.io_uring_disabled is "
                    + sysctlValue() + " (2 disables it for everyone, 1 for users outside kernel.io_uring_group), "
                    + "or a seccomp filter (container runtime default profile, systemd SystemCallFilter=) blocks "
                    + "io_uring_setup; run 'sysctl -w kernel.io_uring_disabled=0' or allow the io_uring_* system calls";
            case Errno.ENOMEM -> "the kernel could not allocate the rings; kernels before 5.12 charge them to the "
                    + "locked-memory limit: raise it (ulimit -l, LimitMEMLOCK= in the systemd unit)";
            case Errno.EINVAL -> "the kernel rejected the ring parameters; it is probably too old for the flags used "
                    + "(the io_uring driver needs Linux 5.6 or later)";
            default -> "unexpected refusal";
        };
    }

    private static String sysctlValue() {
        try {
            return Files.readString(DISABLED_SYSCTL).strip();
        } catch (IOException e) {
            return "unknown (" + DISABLED_SYSCTL + " unreadable: " + e.getMessage() + ")";
        }
    }
}
