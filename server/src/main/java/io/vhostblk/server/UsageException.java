package io.vhostblk.server;

import io.vhostblk.hooks.CommandUsageException;

/** A command line the CLI cannot act on; the message says which option and why. */
public final class UsageException extends CommandUsageException {
    public UsageException(String message) {
        super(message);
    }
}
