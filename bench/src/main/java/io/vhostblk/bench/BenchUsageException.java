package io.vhostblk.bench;

import io.vhostblk.hooks.CommandUsageException;

/** A {@code vhost-blk bench} command line that cannot be run; the message names the option and why. */
public final class BenchUsageException extends CommandUsageException {
    public BenchUsageException(String message) {
        super(message);
    }
}
