package io.vhostblk.server;

/** The server cannot start: a disk that cannot be opened, a socket that cannot be bound... */
public final class StartupException extends Exception {
    public StartupException(String message, Throwable cause) {
        super(message, cause);
    }
}
