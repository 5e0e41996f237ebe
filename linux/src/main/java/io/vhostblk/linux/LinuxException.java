package io.vhostblk.linux;

import java.io.IOException;

/** A failed Linux system call: the call's name, its errno and what it was operating on. */
public final class LinuxException extends IOException {
    private final int errno;
    private final String call;

    public LinuxException(String call, int errno, String context) {
        super(call + " failed: " + Errno.describe(errno) + (context == null || context.isEmpty() ? "" : " (" + context + ")"));
        this.call = call;
        this.errno = errno;
    }

    /** The errno value the kernel returned. */
    public int errno() {
        return errno;
    }

    /** The system call that failed, for example {@code "mmap"}. */
    public String call() {
        return call;
    }
}
