package io.vhostblk.bench;

/** A benchmark that could not run or finish: the back-end refused the set-up, stalled, or broke the protocol. */
public final class BenchException extends Exception {
    public BenchException(String message) {
        super(message);
    }

    public BenchException(String message, Throwable cause) {
        super(message, cause);
    }
}
