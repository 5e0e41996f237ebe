package io.vhostblk.drivers;

/** A driver that cannot be opened or used: names the backing and the reason. */
public class DriverException extends Exception {
    public DriverException(String message) {
        super(message);
    }

    public DriverException(String message, Throwable cause) {
        super(message, cause);
    }
}
