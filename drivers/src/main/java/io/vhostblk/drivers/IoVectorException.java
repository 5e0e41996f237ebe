package io.vhostblk.drivers;

/** Request data refused: a range outside its memory, an overflowing length, too many segments. */
public class IoVectorException extends RuntimeException {
    public IoVectorException(String message) {
        super(message);
    }
}
