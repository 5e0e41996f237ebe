package io.vhostblk.drivers;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;

import java.nio.file.Path;

/**
 * Serves a raw image file or block device through io_uring: one ring per queue, reads and writes
 * straight between the device and the request's iovecs (READV/WRITEV, no copy), FLUSH as
 * fdatasync, DISCARD as a punched hole and WRITE_ZEROES as zero-range, all asynchronous.
 *
 * <p>With {@code direct} (the default) the image is opened {@code O_DIRECT}, bypassing the host
 * page cache. A second, buffered descriptor serves what O_DIRECT cannot: requests whose buffers
 * or offset are not 512-byte aligned (and any the kernel refuses with EINVAL, as a 4K-sector
 * device does), and the rest of a short transfer. Both descriptors name the same file, and the
 * kernel writes back and invalidates cached pages around O_DIRECT I/O, so the two stay coherent.
 */
public final class IoUringDriver extends ImageDriver {
    private static final System.Logger LOG = System.getLogger(IoUringDriver.class.getName());

    private final int directFd;
    private final int bufferedFd;
    private final DriverOptions options;

    IoUringDriver(Path path, int directFd, int bufferedFd, long capacity, boolean readOnly, DriverOptions options) {
        super(path, capacity, readOnly);
        this.directFd = directFd;
        this.bufferedFd = bufferedFd;
        this.options = options;
    }

    @Override
    int imageFd() {
        return bufferedFd;
    }

    /** Whether this process may use io_uring, and why not. */
    public static IoUringProbe probe() {
        return IoUringProbe.run();
    }

    /**
     * Opens an image (creating a sparse one of {@code size} bytes when missing) for io_uring.
     *
     * @param size the wanted size in bytes, or -1 to take the existing image's size
     * @throws DriverException when the image cannot be opened or io_uring is unavailable (with the
     *                         kernel's reason and how to enable it)
     */
    public static IoUringDriver open(Path path, long size, boolean readOnly, DriverOptions options) throws DriverException {
        IoUringProbe probe = probe();
        if (!probe.available()) {
            throw new DriverException("cannot serve " + path + " with io_uring: " + probe.reason());
        }
        ImageFile.Opened image;
        boolean direct = options.direct();
        if (direct) {
            try {
                image = ImageFile.open(path, size, readOnly, Libc.O_DIRECT);
            } catch (DriverException directFailure) {
                // tmpfs before 6.6 and some FUSE file systems refuse O_DIRECT: serve through the page cache.
                image = ImageFile.open(path, size, readOnly, 0);
                direct = false;
                LOG.log(System.Logger.Level.WARNING, "{0} cannot be opened with O_DIRECT ({1}); serving it through "
                        + "the host page cache", path, directFailure.getMessage());
            }
        } else {
            image = ImageFile.open(path, size, readOnly, 0);
        }
        int bufferedFd = image.fd();
        if (direct) {
            bufferedFd = Libc.open(path.toString(), (readOnly ? Libc.O_RDONLY : Libc.O_RDWR) | Libc.O_CLOEXEC, 0);
            if (bufferedFd < 0) {
                Libc.close(image.fd());
                throw new DriverException("cannot open " + path + " a second time for unaligned requests: "
                        + Errno.describe(-bufferedFd));
            }
        }
        return new IoUringDriver(path, image.fd(), bufferedFd, image.size(), readOnly, options.withDirect(direct));
    }

    @Override
    public String kind() {
        return "io_uring";
    }

    /** Whether the image is served with O_DIRECT (false when asked for buffered or the file system refused it). */
    public boolean direct() {
        return directFd != bufferedFd;
    }

    public DriverOptions options() {
        return options;
    }

    /** Sets up this queue's ring; the returned queue also implements {@link KickAware}. */
    @Override
    public DriverQueue openQueue(int queueIndex, DriverCompletion completion) throws DriverException {
        return new IoUringQueue(this, queueIndex, completion);
    }

    @Override
    public void sync() throws DriverException {
        int rc = Libc.fdatasync(directFd);
        if (rc < 0) {
            throw new DriverException("fdatasync of " + path + " failed: " + Errno.describe(-rc));
        }
    }

    /** Closes the image; queues must be closed first. */
    @Override
    public void close() {
        if (bufferedFd != directFd) {
            Libc.close(bufferedFd);
        }
        Libc.close(directFd);
    }

    Path path() {
        return path;
    }

    int directFd() {
        return directFd;
    }

    int bufferedFd() {
        return bufferedFd;
    }
}
