package io.vhostblk.bench;

/** A {@code vhost-blk bench} command line that cannot be run; the message names the option and why. */
public final class BenchUsageException extends Exception {
    public BenchUsageException(String message) {
        super(message);
    }
}
