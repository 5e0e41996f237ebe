package io.vhostblk.linux;

import java.util.Map;

/** Linux errno values the project acts on, and their names for messages. */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EFAULT = 14;
    public static final int EBUSY = 16;
    public static final int EEXIST = 17;
    public static final int EINVAL = 22;
    public static final int EFBIG = 27;
    public static final int ENOSPC = 28;
    public static final int EROFS = 30;
    public static final int EPIPE = 32;
    public static final int ENOSYS = 38;
    public static final int EOPNOTSUPP = 95;
    public static final int ECONNRESET = 104;
    public static final int ETIMEDOUT = 110;
    public static final int ETIME = 62;
    public static final int ECANCELED = 125;

    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(EPERM, "EPERM (operation not permitted)"),
            Map.entry(ENOENT, "ENOENT (no such file or directory)"),
            Map.entry(EINTR, "EINTR (interrupted system call)"),
            Map.entry(EIO, "EIO (input/output error)"),
            Map.entry(EBADF, "EBADF (bad file descriptor)"),
            Map.entry(EAGAIN, "EAGAIN (resource temporarily unavailable)"),
            Map.entry(ENOMEM, "ENOMEM (out of memory)"),
            Map.entry(EACCES, "EACCES (permission denied)"),
            Map.entry(EFAULT, "EFAULT (bad address)"),
            Map.entry(EBUSY, "EBUSY (device or resource busy)"),
            Map.entry(EEXIST, "EEXIST (file exists)"),
            Map.entry(EINVAL, "EINVAL (invalid argument)"),
            Map.entry(EFBIG, "EFBIG (file too large)"),
            Map.entry(ENOSPC, "ENOSPC (no space left on device)"),
            Map.entry(EROFS, "EROFS (read-only file system)"),
            Map.entry(EPIPE, "EPIPE (broken pipe)"),
            Map.entry(ENOSYS, "ENOSYS (function not implemented)"),
            Map.entry(EOPNOTSUPP, "EOPNOTSUPP (operation not supported)"),
            Map.entry(ECONNRESET, "ECONNRESET (connection reset by peer)"),
            Map.entry(ETIMEDOUT, "ETIMEDOUT (connection timed out)"),
            Map.entry(ETIME, "ETIME (timer expired)"),
            Map.entry(ECANCELED, "ECANCELED (operation canceled)"));

    private Errno() {
    }

    /** A readable name for an errno value, for example {@code "ENOSPC (no space left on device)"}. */
    public static String describe(int errno) {
        String name = NAMES.get(errno);
        return name != null ? name : "errno " + errno;
    }
}
