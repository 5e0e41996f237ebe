package io.vhostblk.compat;

/** A device size change that was refused or failed; the device keeps its old size. */
public final class ResizeException extends Exception {
    public ResizeException(String message) {
        super(message);
    }

    public ResizeException(String message, Throwable cause) {
        super(message, cause);
    }
}
