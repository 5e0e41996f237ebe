package io.vhostblk.drivers;

/**
 * A storage back-end for one exported device: a file, a block device, RAM, ... Opened once per
 * device; each queue event loop gets its own {@link DriverQueue}.
 */
public interface BlockDriver extends AutoCloseable {

    /** Short name of the driver kind, for logs and the control API ({@code "file"}, {@code "io_uring"}). */
    String kind();

    /** What is being served, for logs (a path, "ram:1G"...). */
    String target();

    /** Size of the device in bytes (a multiple of 512); changes only through {@link #resize}. */
    long capacity();

    /**
     * Changes the size of what is served to {@code bytes} (a positive multiple of 512), growing or
     * shrinking the image itself, and from then on reports it as the capacity. Called off the
     * queues' loops while they may be serving requests; requests already checked against the old
     * size stay valid when growing. Whether shrinking is allowed is the caller's decision.
     *
     * @throws DriverException when this driver cannot change its size, or the change failed
     *                         (the capacity is then unchanged)
     */
    default void resize(long bytes) throws DriverException {
        throw new DriverException(kind() + " driver (" + target() + ") cannot change its size");
    }

    /**
     * Registers who is told when the storage changes size outside {@link #resize} (a shared image
     * resized by another client). Drivers whose storage cannot change under them ignore it.
     */
    default void capacityListener(CapacityListener listener) {
    }

    /** Whether writes are refused. */
    boolean readOnly();

    /** Whether DISCARD deallocates (punch hole) and reads back zeros afterwards. */
    boolean supportsDiscard();

    /** Whether WRITE_ZEROES is served without transferring data. */
    boolean supportsWriteZeroes();

    /** Creates the context for one queue event loop; results go to {@code completion}. */
    DriverQueue openQueue(int queueIndex, DriverCompletion completion) throws DriverException;

    /** Makes everything written so far durable (shutdown, tests). */
    void sync() throws DriverException;

    @Override
    void close();
}
