package io.vhostblk.frontend;

/** A vhost-user message that breaks the protocol; the connection that sent it is closed with this reason. */
public class VhostUserException extends Exception {
    public VhostUserException(String message) {
        super(message);
    }

    public VhostUserException(String message, Throwable cause) {
        super(message, cause);
    }
}
