package io.vhostblk.hooks;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A module's settings from the policy, each with the place it came from, so that a bad value is
 * reported as {@code policy.conf:12: module zero-detect: setting min-bytes: ...}.
 */
public final class ModuleSettings {
    private final String module;
    private final Map<String, String> values;
    private final Map<String, String> origins;

    public ModuleSettings(String module, Map<String, String> values, Map<String, String> origins) {
        this.module = module;
        this.values = new LinkedHashMap<>(values);
        this.origins = new LinkedHashMap<>(origins);
    }

    /** No settings. */
    public static ModuleSettings empty(String module) {
        return new ModuleSettings(module, Map.of(), Map.of());
    }

    public Map<String, String> asMap() {
        return Map.copyOf(values);
    }

    public String string(String key, String fallback) {
        return values.getOrDefault(key, fallback);
    }

    public long number(String key, long fallback, long min, long max) throws ModuleException {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        long n;
        try {
            n = Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw error(key, "'" + v + "' is not a whole number");
        }
        if (n < min || n > max) {
            throw error(key, n + " is outside " + min + ".." + max);
        }
        return n;
    }

    /** A byte count: digits with an optional K, M, G or T suffix (powers of 1024, optional B/iB), within {@code min..max}. */
    public long bytes(String key, long fallback, long min, long max) throws ModuleException {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        long n;
        try {
            n = ByteSizes.parse(v);
        } catch (IllegalArgumentException e) {
            throw error(key, e.getMessage());
        }
        if (n < min || n > max) {
            throw error(key, n + " bytes is outside " + min + ".." + max);
        }
        return n;
    }

    public boolean flag(String key, boolean fallback) throws ModuleException {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        return switch (v.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "true", "yes", "on", "1" -> true;
            case "false", "no", "off", "0" -> false;
            default -> throw error(key, "'" + v + "' is not true or false");
        };
    }

    /** Refuses any setting not in {@code known}, naming it and where it was set (a typo must not pass silently). */
    public void allowOnly(String... known) throws ModuleException {
        java.util.Set<String> allowed = java.util.Set.of(known);
        for (String key : values.keySet()) {
            if (!allowed.contains(key)) {
                throw error(key, "unknown setting (" + module + " knows: "
                        + String.join(", ", allowed.stream().sorted().toList()) + ")");
            }
        }
    }

    /** An error about one setting, naming where it was set. */
    public ModuleException error(String key, String problem) {
        String where = origins.getOrDefault(key, "settings");
        return new ModuleException(where + ": module " + module + ": setting " + key + ": " + problem);
    }
}
