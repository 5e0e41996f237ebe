package io.vhostblk.modules.reduce;

/** The negative errno values the volume reports through {@link IoCompletion} and request completions. */
public final class Errno {

    public static final int OK = 0;
    public static final int EIO = -5;
    public static final int EINVAL = -22;
    public static final int ENOSPC = -28;

    private Errno() {
    }

    /** A short name for logs and messages. */
    public static String name(int result) {
        return switch (result) {
            case OK -> "OK";
            case EIO -> "EIO";
            case EINVAL -> "EINVAL";
            case ENOSPC -> "ENOSPC";
            default -> "errno " + (-result);
        };
    }
}
