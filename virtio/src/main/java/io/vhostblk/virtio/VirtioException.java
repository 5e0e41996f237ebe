package io.vhostblk.virtio;

/** A guest- or front-end-supplied value that breaks the virtio rules (bad address, bad ring layout, ...). */
public class VirtioException extends Exception {
    public VirtioException(String message) {
        super(message);
    }
}
