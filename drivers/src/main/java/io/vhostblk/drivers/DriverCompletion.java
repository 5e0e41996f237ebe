package io.vhostblk.drivers;

/** Receives a driver's result for a request: bytes transferred (or 0), or {@code -errno}. */
@FunctionalInterface
public interface DriverCompletion {
    void complete(BlockRequest request, long result);
}
