package io.vhostblk.modules.reduce;

import java.io.IOException;

/** A reduce volume cannot be used: its image is not a volume, is damaged, or the layer beneath failed. */
public class ReduceException extends IOException {

    public ReduceException(String message) {
        super(message);
    }

    public ReduceException(String message, Throwable cause) {
        super(message, cause);
    }
}
