package io.vhostblk.drivers;

/** A write into device-readable request data: the guest handed those buffers to us to read, never to change. */
public final class WriteRefusedException extends IoVectorException {
    public WriteRefusedException(String message) {
        super(message);
    }
}
