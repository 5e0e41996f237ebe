package io.vhostblk.server;

/** A control command that cannot be carried out; the message is the reply's {@code error}. */
public final class ControlException extends Exception {
    public ControlException(String message) {
        super(message);
    }
}
