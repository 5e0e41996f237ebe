package io.vhostblk.drivers;

/**
 * An RBD image as named on the command line: {@code rbd:POOL/IMAGE} or {@code rbd:POOL/IMAGE@SNAP}
 * (a snapshot, always served read-only).
 */
public record RbdImageName(String pool, String image, String snapshot) {
    /** The prefix that marks a disk as an RBD image. */
    public static final String PREFIX = "rbd:";

    public RbdImageName {
        if (pool.isEmpty() || image.isEmpty() || (snapshot != null && snapshot.isEmpty())) {
            throw new IllegalArgumentException("empty pool, image or snapshot name");
        }
    }

    /** Whether {@code disk} names an RBD image rather than a file. */
    public static boolean isRbd(String disk) {
        return disk.startsWith(PREFIX);
    }

    /** Parses {@code rbd:POOL/IMAGE[@SNAP]}; the message says which part is wrong. */
    public static RbdImageName parse(String disk) {
        if (!isRbd(disk)) {
            throw new IllegalArgumentException("'" + disk + "' is not an RBD image: expected rbd:POOL/IMAGE[@SNAP]");
        }
        String rest = disk.substring(PREFIX.length());
        int slash = rest.indexOf('/');
        if (slash <= 0 || slash == rest.length() - 1 || rest.indexOf('/', slash + 1) >= 0) {
            throw new IllegalArgumentException("'" + disk + "': expected rbd:POOL/IMAGE[@SNAP] (one '/' between a pool and an image)");
        }
        String pool = rest.substring(0, slash);
        String image = rest.substring(slash + 1);
        String snapshot = null;
        int at = image.indexOf('@');
        if (at >= 0) {
            snapshot = image.substring(at + 1);
            image = image.substring(0, at);
            if (image.isEmpty() || snapshot.isEmpty() || snapshot.indexOf('@') >= 0) {
                throw new IllegalArgumentException("'" + disk + "': expected rbd:POOL/IMAGE@SNAP with a non-empty image and snapshot");
            }
        }
        return new RbdImageName(pool, image, snapshot);
    }

    @Override
    public String toString() {
        return PREFIX + pool + "/" + image + (snapshot == null ? "" : "@" + snapshot);
    }
}
