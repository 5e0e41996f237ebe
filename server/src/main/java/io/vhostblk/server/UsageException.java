package io.vhostblk.server;

/** A command line the CLI cannot act on; the message says which option and why. */
public final class UsageException extends Exception {
    public UsageException(String message) {
        super(message);
    }
}
