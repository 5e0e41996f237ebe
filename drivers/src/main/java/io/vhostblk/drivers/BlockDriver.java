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

    /** Size of the device in bytes (a multiple of 512). */
    long capacity();

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
