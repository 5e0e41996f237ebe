package io.vhostblk.server;

import io.vhostblk.drivers.DriverKind;
import io.vhostblk.hooks.ModuleSettings;
import io.vhostblk.hooks.Sha256;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads the policy format of docs/policy.md: {@code key = value} lines, {@code #} comments,
 * {@code [module NAME]} sections. Every error names the file, the line and the field.
 */
final class PolicyParser {
    private static final System.Logger LOG = System.getLogger(PolicyParser.class.getName());
    private static final List<String> TOP_KEYS = List.of("vm", "module-dir", "compat-lib-sha256", "chain");
    private static final List<String> MODULE_KEYS = List.of("jar", "sha256", "devices", "vms", "drivers", "enabled");
    private static final String SETTING_PREFIX = "set.";
    private static final Pattern MODULE_NAME = Pattern.compile("[a-z0-9][a-z0-9._-]*");
    private static final Pattern SETTING_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    /** The order that keeps data services effective: dedup and compression need plaintext, so crypt comes last. */
    static final List<String> RECOMMENDED_ORDER = List.of("cache", "dedup", "compress", "crypt");

    /** A value and the line it was on. */
    private record Field(String value, int line) {
    }

    /** A {@code [module NAME]} section as read, before checking. */
    private static final class Section {
        final String name;
        final int line;
        final Map<String, Field> fields = new LinkedHashMap<>();
        final Map<String, Field> settings = new LinkedHashMap<>();

        Section(String name, int line) {
            this.name = name;
            this.line = line;
        }
    }

    private final String fileName;
    private final Path baseDir;
    private final Map<String, Field> top = new LinkedHashMap<>();
    private final Map<String, Section> sections = new LinkedHashMap<>();

    private PolicyParser(String fileName, Path baseDir) {
        this.fileName = fileName;
        this.baseDir = baseDir;
    }

    static Policy parse(Path file) throws PolicyException {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (MalformedInputException e) {
            throw new PolicyException(file + ": the policy is not UTF-8 text", e);
        } catch (IOException e) {
            throw new PolicyException(file + ": cannot read the policy: " + e, e);
        }
        Path dir = file.toAbsolutePath().getParent();
        return parse(file, file.toString(), dir, lines);
    }

    /** Parses {@code lines}; {@code fileName} is used in messages, {@code baseDir} resolves a relative module-dir. */
    static Policy parse(Path file, String fileName, Path baseDir, List<String> lines) throws PolicyException {
        PolicyParser p = new PolicyParser(fileName, baseDir);
        p.read(lines);
        return p.check(file);
    }

    private void read(List<String> lines) throws PolicyException {
        ConfigLines.read(lines, "[module NAME]", new ConfigLines.Reader<PolicyException>() {
            private Section current;

            @Override
            public void section(String inside, String raw, int line) throws PolicyException {
                current = PolicyParser.this.section(inside, raw, line);
            }

            @Override
            public void entry(String key, String value, int line) throws PolicyException {
                if (value.isEmpty()) {
                    throw error(line, current == null ? key : "module " + current.name + ": " + key, "no value after '='");
                }
                if (current == null) {
                    topKey(key, value, line);
                } else {
                    moduleKey(current, key, value, line);
                }
            }

            @Override
            public PolicyException error(int line, String field, String problem) {
                return PolicyParser.this.error(line, field, problem);
            }
        });
    }

    private Section section(String inside, String line, int n) throws PolicyException {
        String[] parts = inside.split("\\s+", 2);
        if (parts.length != 2 || !parts[0].equals("module")) {
            throw error(n, shorten(line), "unknown section; the only kind is [module NAME]");
        }
        String name = parts[1];
        if (!MODULE_NAME.matcher(name).matches()) {
            throw error(n, "[module " + shorten(name) + "]",
                    "a module name is lower-case letters, digits, '.', '_' and '-', starting with a letter or digit");
        }
        Section previous = sections.get(name);
        if (previous != null) {
            throw error(n, "[module " + name + "]", "declared twice (first at line " + previous.line + ")");
        }
        Section s = new Section(name, n);
        sections.put(name, s);
        return s;
    }

    private void topKey(String key, String value, int n) throws PolicyException {
        if (!TOP_KEYS.contains(key)) {
            if (MODULE_KEYS.contains(key) || key.startsWith(SETTING_PREFIX)) {
                throw error(n, key, "belongs in a [module NAME] section");
            }
            throw error(n, shorten(key), "unknown key (before the first section: " + String.join(", ", TOP_KEYS) + ")");
        }
        put(top, key, key, value, n);
    }

    private void moduleKey(Section s, String key, String value, int n) throws PolicyException {
        String field = "module " + s.name + ": " + key;
        if (key.startsWith(SETTING_PREFIX)) {
            String setting = key.substring(SETTING_PREFIX.length());
            if (!SETTING_NAME.matcher(setting).matches()) {
                throw error(n, "module " + s.name + ": " + shorten(key), "a setting is set.NAME, NAME being letters, digits, '.', '_', '-'");
            }
            put(s.settings, setting, field, value, n);
            return;
        }
        if (!MODULE_KEYS.contains(key)) {
            if (TOP_KEYS.contains(key)) {
                throw error(n, field, "belongs before the first [module NAME] section");
            }
            throw error(n, "module " + s.name + ": " + shorten(key), "unknown key (a module section has "
                    + String.join(", ", MODULE_KEYS) + " and set.NAME)");
        }
        put(s.fields, key, field, value, n);
    }

    private void put(Map<String, Field> into, String key, String field, String value, int n) throws PolicyException {
        Field previous = into.putIfAbsent(key, new Field(value, n));
        if (previous != null) {
            throw error(n, field, "set twice (first at line " + previous.line + ")");
        }
    }

    private Policy check(Path file) throws PolicyException {
        String vm = null;
        Field vmField = top.get("vm");
        if (vmField != null) {
            if (vmField.value.chars().anyMatch(Character::isWhitespace)) {
                throw error(vmField.line, "vm", "'" + shorten(vmField.value) + "' contains white space");
            }
            vm = vmField.value;
        }
        Path moduleDir = null;
        Field dirField = top.get("module-dir");
        if (dirField != null) {
            moduleDir = path(dirField, "module-dir");
            if (baseDir != null) {
                moduleDir = baseDir.resolve(moduleDir);
            }
        }
        String compat = null;
        Field compatField = top.get("compat-lib-sha256");
        if (compatField != null) {
            compat = sha256(compatField, "compat-lib-sha256");
        }
        Map<String, ModuleDeclaration> declared = new LinkedHashMap<>();
        for (Section s : sections.values()) {
            declared.put(s.name, declaration(s));
        }
        List<ModuleDeclaration> ordered = order(declared);
        warnAboutOrder(ordered);
        return new Policy(file, vm, moduleDir, compat, ordered);
    }

    private ModuleDeclaration declaration(Section s) throws PolicyException {
        String prefix = "module " + s.name;
        Field jar = required(s, "jar");
        path(jar, prefix + ": jar");
        String sha = sha256(required(s, "sha256"), prefix + ": sha256");
        Selector selector = new Selector(list(s, "devices", false), list(s, "vms", false), list(s, "drivers", true));
        boolean enabled = true;
        Field en = s.fields.get("enabled");
        if (en != null) {
            enabled = switch (en.value.toLowerCase(Locale.ROOT)) {
                case "true", "yes", "on" -> true;
                case "false", "no", "off" -> false;
                default -> throw error(en.line, prefix + ": enabled", "'" + shorten(en.value) + "' is not true or false");
            };
        }
        Map<String, String> values = new LinkedHashMap<>();
        Map<String, String> origins = new LinkedHashMap<>();
        for (Map.Entry<String, Field> e : s.settings.entrySet()) {
            values.put(e.getKey(), e.getValue().value);
            origins.put(e.getKey(), fileName + ":" + e.getValue().line);
        }
        return new ModuleDeclaration(s.name, jar.value, sha, selector, enabled,
                new ModuleSettings(s.name, values, origins), fileName + ":" + s.line);
    }

    /** The chain's order when it is given (every declared module must then have a place), else declaration order. */
    private List<ModuleDeclaration> order(Map<String, ModuleDeclaration> declared) throws PolicyException {
        Field chain = top.get("chain");
        if (chain == null) {
            return List.copyOf(declared.values());
        }
        Set<String> names = new LinkedHashSet<>();
        for (String name : split(chain, "chain")) {
            if (!declared.containsKey(name)) {
                throw error(chain.line, "chain", "module " + shorten(name) + " is not declared (no [module "
                        + shorten(name) + "] section)");
            }
            if (!names.add(name)) {
                throw error(chain.line, "chain", "module " + name + " is listed twice");
            }
        }
        for (Section s : sections.values()) {
            if (!names.contains(s.name)) {
                throw error(s.line, "[module " + s.name + "]", "declared but not in chain (line " + chain.line
                        + "); give it its place in the order (with enabled = false to keep it out at start) or remove it");
            }
        }
        List<ModuleDeclaration> l = new ArrayList<>();
        for (String name : names) {
            l.add(declared.get(name));
        }
        return l;
    }

    private void warnAboutOrder(List<ModuleDeclaration> modules) {
        int lastRank = -1;
        String lastName = null;
        for (ModuleDeclaration m : modules) {
            int rank = RECOMMENDED_ORDER.indexOf(m.name());
            if (rank < 0) {
                continue;
            }
            if (rank < lastRank) {
                LOG.log(Level.WARNING, fileName + ": chain puts " + lastName + " before " + m.name()
                        + "; the recommended order is " + String.join(" -> ", RECOMMENDED_ORDER)
                        + " -> driver (encrypted data neither deduplicates nor compresses)");
            }
            lastRank = Math.max(lastRank, rank);
            if (rank == lastRank) {
                lastName = m.name();
            }
        }
    }

    private Field required(Section s, String key) throws PolicyException {
        Field f = s.fields.get(key);
        if (f == null) {
            throw error(s.line, "module " + s.name + ": " + key, "missing (every module needs jar and sha256)");
        }
        return f;
    }

    private List<String> list(Section s, String key, boolean driverKinds) throws PolicyException {
        Field f = s.fields.get(key);
        if (f == null) {
            return List.of();
        }
        String field = "module " + s.name + ": " + key;
        List<String> l = split(f, field);
        if (driverKinds) {
            List<String> known = driverKinds();
            for (String d : l) {
                if (!Selector.isGlob(d) && !known.contains(d)) {
                    throw error(f.line, field, "unknown driver '" + shorten(d) + "' (drivers: " + String.join(", ", known) + ")");
                }
            }
        }
        return l;
    }

    /** The kinds devices report ({@code BlockDriver.kind()}): the driver kinds other than auto. */
    static List<String> driverKinds() {
        List<String> l = new ArrayList<>();
        for (DriverKind k : DriverKind.values()) {
            if (k != DriverKind.AUTO) {
                l.add(k.name().toLowerCase(Locale.ROOT));
            }
        }
        return l;
    }

    private List<String> split(Field f, String field) throws PolicyException {
        List<String> l = new ArrayList<>();
        for (String part : f.value.split(",", -1)) {
            String v = part.strip();
            if (v.isEmpty()) {
                throw error(f.line, field, "empty entry in the comma-separated list '" + shorten(f.value) + "'");
            }
            l.add(v);
        }
        return l;
    }

    private String sha256(Field f, String field) throws PolicyException {
        if (!Sha256.valid(f.value)) {
            throw error(f.line, field, "'" + shorten(f.value) + "' is not a SHA-256 digest (64 hex digits; sha256sum prints it)");
        }
        return f.value.toLowerCase(Locale.ROOT);
    }

    private Path path(Field f, String field) throws PolicyException {
        try {
            return Path.of(f.value);
        } catch (InvalidPathException e) {
            throw error(f.line, field, "'" + shorten(f.value) + "' is not a valid path: " + e.getReason());
        }
    }

    private static String shorten(String s) {
        return ConfigLines.shorten(s);
    }

    private PolicyException error(int line, String field, String problem) {
        return new PolicyException(fileName + ":" + line + ": " + field + ": " + problem);
    }
}
