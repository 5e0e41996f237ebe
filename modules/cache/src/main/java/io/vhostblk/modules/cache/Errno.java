package io.vhostblk.modules.cache;

/** The few {@code errno} values the cache answers with (Linux numbering, as drivers report them). */
final class Errno {
    static final int OK = 0;
    static final int EIO = 5;
    static final int EINVAL = 22;

    private Errno() {
    }
}
