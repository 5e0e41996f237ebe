package io.vhostblk.frontend;

/**
 * A well-formed request the back-end could not carry out (mapping failed, the device refused a
 * config write, a ring could not start). Unlike a protocol violation it can be reported through
 * a REPLY_ACK instead of closing the connection.
 */
final class RequestFailedException extends VhostUserException {
    RequestFailedException(String message, Throwable cause) {
        super(message, cause);
    }

    RequestFailedException(String message) {
        super(message);
    }
}
