package io.vhostblk.server;

/** A policy file that cannot be used; the message names the file, the line and the field. */
public final class PolicyException extends Exception {
    public PolicyException(String message) {
        super(message);
    }

    public PolicyException(String message, Throwable cause) {
        super(message, cause);
    }
}
