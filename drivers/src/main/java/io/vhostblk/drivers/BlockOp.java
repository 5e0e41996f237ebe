package io.vhostblk.drivers;

/** The operations a block driver serves, in the driver's own terms (not virtio's). */
public enum BlockOp {
    READ, WRITE, FLUSH, DISCARD, WRITE_ZEROES;

    /** Whether the operation changes the medium (refused on a read-only device). */
    public boolean modifies() {
        return this != READ && this != FLUSH;
    }
}
