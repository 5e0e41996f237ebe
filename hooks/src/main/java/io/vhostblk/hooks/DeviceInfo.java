package io.vhostblk.hooks;

/**
 * What a module may know about the device it is attached to. {@code target} is what the driver
 * serves (an image path for the file and io_uring drivers, {@code "ram:1G"} and the like
 * otherwise), so that a module keeping metadata on the device (a LUKS header) can read it at
 * attach time.
 */
public record DeviceInfo(String deviceId, String vmName, String driverKind, long capacity, boolean readOnly, String target) {

    /** How log lines name the device: {@code vm=V device=D}, as the server's own do. */
    public String label() {
        return "vm=" + vmName + " device=" + deviceId;
    }
}
