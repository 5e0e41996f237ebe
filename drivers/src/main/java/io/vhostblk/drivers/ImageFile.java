package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opening and sizing raw images: creates a sparse file of the asked size, or checks an existing one. */
public final class ImageFile {
    /** An open image: its descriptor and its size in bytes. */
    public record Opened(int fd, long size) {
    }

    private ImageFile() {
    }

    /**
     * Opens {@code path} for the drivers; creates it (sparse, {@code size} bytes) when missing.
     *
     * @param size  wanted size in bytes, or -1 to take the existing size
     * @param extraFlags  open flags beyond access mode, e.g. {@code O_DIRECT}
     * @return the open file and the device size
     */
    public static Opened open(Path path, long size, boolean readOnly, int extraFlags) throws DriverException {
        boolean exists = Files.exists(path);
        if (!exists && readOnly) {
            throw new DriverException("disk image " + path + " does not exist (a read-only export cannot create it)");
        }
        if (!exists && size < 0) {
            throw new DriverException("disk image " + path + " does not exist; give --size to create it");
        }
        if (size >= 0 && size % 512 != 0) {
            throw new DriverException("size " + size + " for " + path + " is not a multiple of 512 bytes");
        }
        if (exists && !Files.isRegularFile(path) && !isBlockDevice(path)) {
            throw new DriverException(path + " is neither a regular file nor a block device");
        }
        int flags = (readOnly ? Libc.O_RDONLY : Libc.O_RDWR) | Libc.O_CLOEXEC | extraFlags | (exists ? 0 : Libc.O_CREAT);
        int fd = Libc.open(path.toString(), flags, 0644);
        if (fd < 0) {
            throw new DriverException("cannot open disk image " + path + ": " + Errno.describe(-fd));
        }
        long actual = Libc.lseek(fd, 0, Libc.SEEK_END);
        if (actual < 0) {
            Libc.close(fd);
            throw new DriverException("cannot size " + path + ": " + Errno.describe((int) -actual));
        }
        if (!exists) {
            int rc = Libc.ftruncate(fd, size);
            if (rc < 0) {
                Libc.close(fd);
                throw new DriverException("cannot size new image " + path + " to " + size + " bytes: " + Errno.describe(-rc));
            }
        } else if (size >= 0 && actual != size) {
            Libc.close(fd);
            throw new DriverException("disk image " + path + " is " + actual + " bytes but --size asks for " + size
                    + "; omit --size to use it as it is, or resize it (qemu-img resize)");
        } else if (actual % 512 != 0) {
            Libc.close(fd);
            throw new DriverException("disk image " + path + " is " + actual + " bytes, not a multiple of 512");
        }
        return new Opened(fd, exists ? actual : size);
    }

    static boolean isBlockDevice(Path path) {
        try {
            Object mode = Files.getAttribute(path, "unix:mode");
            return mode instanceof Integer m && (m & 0170000) == 0060000;
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }
}
