package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;

import java.nio.file.Path;

/**
 * What the drivers over an image file or block device share: the path, the size, read-only, and
 * the range operations a writable file offers (hole punching and zero-range).
 */
abstract class ImageDriver implements BlockDriver {
    protected final Path path;
    /** Written by {@link #resize} (control thread), read by the queues: volatile. */
    protected volatile long capacity;
    protected final boolean readOnly;

    ImageDriver(Path path, long capacity, boolean readOnly) {
        this.path = path;
        this.capacity = capacity;
        this.readOnly = readOnly;
    }

    @Override
    public String target() {
        return path.toString();
    }

    @Override
    public long capacity() {
        return capacity;
    }

    /** A descriptor of the image for {@link #resize} (any of the driver's: they name one file). */
    abstract int imageFd();

    /**
     * Sets the image's size with ftruncate (sparse when growing). A block device cannot be
     * truncated: it is resized with its own tools (lvextend, ...) and then here to the size it
     * now has, which is accepted without a change.
     */
    @Override
    public synchronized void resize(long bytes) throws DriverException {
        if (readOnly) {
            throw new DriverException(path + " is served read-only: its size cannot change");
        }
        int fd = imageFd();
        if (Libc.lseek(fd, 0, Libc.SEEK_END) != bytes) {
            int rc = Libc.ftruncate(fd, bytes);
            if (rc < 0) {
                throw new DriverException("cannot resize " + path + " to " + bytes + " bytes: ftruncate: "
                        + Errno.describe(-rc) + (rc == -Errno.EINVAL
                        ? " (a block device is resized with its own tools first, then here to its new size)" : ""));
            }
        }
        capacity = bytes;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public boolean supportsDiscard() {
        return !readOnly;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return !readOnly;
    }
}
