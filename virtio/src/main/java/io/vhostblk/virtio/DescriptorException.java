package io.vhostblk.virtio;

/** A descriptor chain the guest built wrongly; the request fails, the queue goes on. */
public final class DescriptorException extends VirtioException {
    public DescriptorException(String message) {
        super(message);
    }
}
