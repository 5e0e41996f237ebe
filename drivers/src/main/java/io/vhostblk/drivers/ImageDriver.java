package io.vhostblk.drivers;

import java.nio.file.Path;

/**
 * What the drivers over an image file or block device share: the path, the size, read-only, and
 * the range operations a writable file offers (hole punching and zero-range).
 */
abstract class ImageDriver implements BlockDriver {
    protected final Path path;
    protected final long capacity;
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
