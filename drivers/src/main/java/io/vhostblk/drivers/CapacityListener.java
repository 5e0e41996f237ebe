package io.vhostblk.drivers;

/**
 * Told when a driver's storage changed size by itself, not through {@link BlockDriver#resize}: an
 * RBD image resized by another client. Called on a thread of the driver's, never a queue's.
 */
@FunctionalInterface
public interface CapacityListener {
    /** The driver now reports {@code bytes} as its capacity. */
    void capacityChanged(long bytes);
}
