package io.vhostblk.server;

import io.vhostblk.hooks.DeviceInfo;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Which devices a module applies to: device ids, VM names and driver kinds, each a list of globs
 * ({@code *} any run of characters, {@code ?} one); an empty list matches everything. A device
 * must match all three lists.
 */
public record Selector(List<String> devices, List<String> vms, List<String> drivers) {
    /** Matches every device. */
    public static final Selector ANY = new Selector(List.of(), List.of(), List.of());

    public Selector {
        devices = List.copyOf(devices);
        vms = List.copyOf(vms);
        drivers = List.copyOf(drivers);
    }

    public boolean matches(DeviceInfo device) {
        return mismatch(device) == null;
    }

    /** Why {@code device} is not selected (for the log), or null when it is. */
    public String mismatch(DeviceInfo device) {
        if (!anyMatches(devices, device.deviceId())) {
            return "device id " + device.deviceId() + " matches none of devices = " + String.join(", ", devices);
        }
        if (!anyMatches(vms, device.vmName())) {
            return "VM " + device.vmName() + " matches none of vms = " + String.join(", ", vms);
        }
        if (!anyMatches(drivers, device.driverKind())) {
            return "driver " + device.driverKind() + " matches none of drivers = " + String.join(", ", drivers);
        }
        return null;
    }

    private static boolean anyMatches(List<String> globs, String value) {
        if (globs.isEmpty()) {
            return true;
        }
        for (String g : globs) {
            if (glob(g).matcher(value).matches()) {
                return true;
            }
        }
        return false;
    }

    /** A glob as a regular expression: {@code *} and {@code ?} are wild, everything else literal. */
    static Pattern glob(String glob) {
        StringBuilder re = new StringBuilder();
        StringBuilder literal = new StringBuilder();
        for (char c : glob.toCharArray()) {
            if (c == '*' || c == '?') {
                if (!literal.isEmpty()) {
                    re.append(Pattern.quote(literal.toString()));
                    literal.setLength(0);
                }
                re.append(c == '*' ? ".*" : ".");
            } else {
                literal.append(c);
            }
        }
        if (!literal.isEmpty()) {
            re.append(Pattern.quote(literal.toString()));
        }
        return Pattern.compile(re.toString(), Pattern.DOTALL);
    }

    static boolean isGlob(String s) {
        return s.indexOf('*') >= 0 || s.indexOf('?') >= 0;
    }
}
