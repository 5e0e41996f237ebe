package io.vhostblk.server;

import io.vhostblk.drivers.RbdImageName;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A host configuration ({@code serve --config FILE}): the process's own keys, then one
 * {@code [device ID]} section per device with the keys of {@code serve}'s options. Format and
 * keys: docs/operations.md. Every error names the file, the line and the field.
 */
record HostConfig(Path file, Path control, InetSocketAddress metrics, List<Device> devices) {

    /** One device's options and the line its section starts on. */
    record Device(ServeOptions options, int line) {
    }

    /** An error in a host configuration: {@code FILE:LINE: FIELD: problem}. */
    static final class ConfigException extends Exception {
        ConfigException(String message) {
            super(message);
        }
    }

    private static final Pattern DEVICE_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final List<String> TOP_KEYS = List.of("control", "metrics");
    /** Keys of the process, not of one device. */
    private static final List<String> PROCESS_KEYS = List.of("control", "metrics");
    /** Keys that are switches of {@code serve}: the value says whether the switch is given. */
    private static final Map<String, Switch> SWITCHES = Map.of(
            "read-only", new Switch("--read-only", true),
            "writeback", new Switch("--no-writeback", false),
            "direct", new Switch("--no-direct", false),
            "read-zeroes", new Switch("--read-zeroes", true),
            "kick-on-ring", new Switch("--kick-on-ring", true));
    /** Keys whose value is a path, resolved against the configuration's directory. */
    private static final List<String> PATH_KEYS = List.of("socket", "disk", "policy", "module-dir", "control",
            "rbd-conf", "rbd-keyring");

    /** A boolean key: the option is given when the value equals {@code whenValue}. */
    private record Switch(String option, boolean whenValue) {
    }

    private record Field(String value, int line) {
    }

    /** Reads and checks {@code file}. */
    static HostConfig load(Path file) throws ConfigException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (MalformedInputException e) {
            throw new ConfigException(file + ": the host configuration is not UTF-8 text");
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read the host configuration: " + e);
        }
        return parse(file, lines);
    }

    /** Parses {@code lines} as the contents of {@code file} (relative paths resolve against its directory). */
    static HostConfig parse(Path file, List<String> lines) throws ConfigException {
        String name = file.toString();
        Path base = file.toAbsolutePath().getParent();
        Map<String, Field> top = new LinkedHashMap<>();
        Map<String, Integer> sectionLines = new LinkedHashMap<>();
        Map<String, Map<String, Field>> sections = new LinkedHashMap<>();
        ConfigLines.read(lines, "[device ID]", new ConfigLines.Reader<ConfigException>() {
            private String current;

            @Override
            public void section(String inside, String raw, int line) throws ConfigException {
                String[] parts = inside.split("\\s+", 2);
                if (parts.length != 2 || !parts[0].equals("device")) {
                    throw error(line, ConfigLines.shorten(raw), "unknown section; the only kind is [device ID]");
                }
                if (!DEVICE_ID.matcher(parts[1]).matches()) {
                    throw error(line, "[device " + ConfigLines.shorten(parts[1]) + "]",
                            "a device id is letters, digits, '.', '_' and '-', starting with a letter or digit");
                }
                Integer previous = sectionLines.putIfAbsent(parts[1], line);
                if (previous != null) {
                    throw error(line, "[device " + parts[1] + "]", "declared twice (first at line " + previous + ")");
                }
                current = parts[1];
                sections.put(current, new LinkedHashMap<>());
            }

            @Override
            public void entry(String key, String value, int line) throws ConfigException {
                String field = current == null ? key : "device " + current + ": " + key;
                if (value.isEmpty()) {
                    throw error(line, field, "no value after '='");
                }
                Map<String, Field> into;
                if (current == null) {
                    if (!TOP_KEYS.contains(key)) {
                        throw error(line, ConfigLines.shorten(key),
                                "unknown key before the first [device ID] section (there: " + String.join(", ", TOP_KEYS) + ")");
                    }
                    into = top;
                } else {
                    if (key.equals("id")) {
                        throw error(line, field, "the id is the section's name ([device ID])");
                    }
                    if (PROCESS_KEYS.contains(key)) {
                        throw error(line, field, "is the process's: set it before the first [device ID] section");
                    }
                    into = sections.get(current);
                }
                Field previous = into.putIfAbsent(key, new Field(value, line));
                if (previous != null) {
                    throw error(line, field, "set twice (first at line " + previous.line() + ")");
                }
            }

            @Override
            public ConfigException error(int line, String field, String problem) {
                return HostConfig.error(name, line, field, problem);
            }
        });
        if (sections.isEmpty()) {
            throw new ConfigException(name + ": no [device ID] section: a host configuration serves at least one device");
        }
        Path control = top.containsKey("control") ? path(name, base, top.get("control"), "control") : null;
        InetSocketAddress metrics = null;
        if (top.containsKey("metrics")) {
            Field f = top.get("metrics");
            try {
                metrics = ServeOptions.metricsAddress("metrics", f.value());
            } catch (UsageException e) {
                throw error(name, f.line(), "metrics", e.getMessage().replaceFirst("^metrics:\\s*", ""));
            }
        }
        List<Device> devices = new ArrayList<>();
        Map<Path, String> sockets = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, Field>> s : sections.entrySet()) {
            int line = sectionLines.get(s.getKey());
            ServeOptions options = deviceOptions(name, base, s.getKey(), line, s.getValue());
            String other = sockets.putIfAbsent(options.socket().toAbsolutePath().normalize(), s.getKey());
            if (other != null) {
                Field f = s.getValue().get("socket");
                throw error(name, f.line(), "device " + s.getKey() + ": socket", "already the socket of device " + other);
            }
            if (control != null && control.normalize().equals(options.socket().toAbsolutePath().normalize())) {
                throw error(name, s.getValue().get("socket").line(), "device " + s.getKey() + ": socket",
                        "is the control socket");
            }
            devices.add(new Device(options, line));
        }
        return new HostConfig(file, control, metrics, List.copyOf(devices));
    }

    /** A path value resolved against the configuration's directory; one the file system refuses (a NUL byte) is an error of its line. */
    private static Path path(String name, Path base, Field f, String field) throws ConfigException {
        try {
            return base.resolve(f.value());
        } catch (InvalidPathException e) {
            throw error(name, f.line(), field, "is not a usable path (" + e.getReason() + ")");
        }
    }

    /**
     * A section's keys become {@code serve}'s options and are checked by the same parser, so the
     * config and the command line accept exactly the same things; its errors point at the key's line.
     */
    private static ServeOptions deviceOptions(String name, Path base, String id, int sectionLine,
                                              Map<String, Field> fields) throws ConfigException {
        List<String> args = new ArrayList<>(List.of("--id", id));
        Map<String, Field> byOption = new LinkedHashMap<>();
        for (Map.Entry<String, Field> e : fields.entrySet()) {
            String key = e.getKey();
            Field f = e.getValue();
            Switch sw = SWITCHES.get(key);
            if (sw != null) {
                boolean value = bool(name, f, "device " + id + ": " + key);
                if (value == sw.whenValue()) {
                    args.add(sw.option());
                }
                byOption.put(sw.option(), f);
                continue;
            }
            String option = "--" + key;
            String value = PATH_KEYS.contains(key) && !RbdImageName.isRbd(f.value())
                    ? path(name, base, f, "device " + id + ": " + key).toString() : f.value();
            args.add(option);
            args.add(value);
            byOption.put(option, f);
        }
        try {
            return ServeOptions.parse(args);
        } catch (UsageException e) {
            // ServeOptions names the option first ("--queues: ...", "unknown option '--x'", "--socket is required").
            String message = e.getMessage();
            for (Map.Entry<String, Field> o : byOption.entrySet()) {
                String option = o.getKey();
                if (message.startsWith(option + ":") || message.startsWith(option + " ")
                        || message.startsWith("unknown option '" + option + "'")) {
                    String key = option.startsWith("--no-") ? option.substring(5) : option.substring(2);
                    key = fields.containsKey(key) ? key : keyOf(fields, o.getValue());
                    String problem = message.startsWith("unknown option") ? "unknown key"
                            : message.substring(option.length()).replaceFirst("^:?\\s*", "");
                    throw error(name, o.getValue().line(), "device " + id + ": " + key, problem);
                }
            }
            throw error(name, sectionLine, "[device " + id + "]",
                    message.replace("--", "").replace("(see vhost-blk serve help)", ""));
        }
    }

    private static String keyOf(Map<String, Field> fields, Field f) {
        return fields.entrySet().stream().filter(e -> e.getValue() == f).map(Map.Entry::getKey).findFirst().orElse("?");
    }

    private static boolean bool(String name, Field f, String field) throws ConfigException {
        return switch (f.value()) {
            case "true", "yes", "on" -> true;
            case "false", "no", "off" -> false;
            default -> throw error(name, f.line(), field, "'" + ConfigLines.shorten(f.value()) + "' is not true or false");
        };
    }

    private static ConfigException error(String name, int line, String field, String problem) {
        return new ConfigException(name + ":" + line + ": " + field + ": " + problem);
    }
}
