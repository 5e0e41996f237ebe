package io.vhostblk.server;

import io.vhostblk.hooks.ModuleCommand;

import java.io.IOException;
import java.io.PrintStream;
import java.net.MalformedURLException;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Administration commands that live in module jars ({@code vhost-blk crypt ...}): found at run time in the
 * module directory, like the modules themselves, so the server has no compile-time dependency on any module.
 * (A module's classes in the server jar would also shadow the module jar's own copy under parent-first class
 * loading, defeating the loader's per-jar digest check.)
 *
 * <p>Where jars are looked for, first match wins: {@code --module-dir DIR} right after the command name,
 * {@code $VHOST_BLK_MODULE_DIR}, {@code modules/} beside the server jar, and in a source checkout
 * {@code modules/NAME/target/}. These commands act on files the administrator names; unlike modules in a
 * serving process, their jars are not checked against a policy digest.
 */
final class ModuleCommands {

    static final String ENV = "VHOST_BLK_MODULE_DIR";

    private ModuleCommands() {
    }

    /** A module's command and the words after its name (a leading {@code --module-dir DIR} taken off). */
    record Found(ModuleCommand command, List<String> args) {
    }

    /** Finds module command {@code name}; {@code args} (the words after it) may start with {@code --module-dir DIR}. */
    static Found find(String name, List<String> args, PrintStream err) throws UsageException {
        List<String> rest = args;
        List<Path> dirs = new ArrayList<>();
        if (!rest.isEmpty() && rest.get(0).equals("--module-dir")) {
            if (rest.size() < 2) {
                throw new UsageException(name + ": --module-dir needs a directory");
            }
            dirs.add(Path.of(rest.get(1)));
            rest = rest.subList(2, rest.size());
        } else {
            dirs.addAll(defaultDirs(name));
        }
        for (Path dir : dirs) {
            for (Path jar : jars(dir)) {
                ModuleCommand command = find(jar, name, err);
                if (command != null) {
                    return new Found(command, rest);
                }
            }
        }
        throw new UsageException("unknown command '" + name + "': no module jar providing it in " + dirs
                + " (build it with ./mvnw -pl modules/" + name + " -am package, or give --module-dir DIR or $" + ENV
                + "; see vhost-blk --help)");
    }

    /** Every module command in the default places (for the completion script), one per name, first found wins. */
    static List<ModuleCommand> available() {
        java.util.Map<String, ModuleCommand> byName = new java.util.TreeMap<>();
        PrintStream quiet = new PrintStream(PrintStream.nullOutputStream());
        for (Path dir : installedDirs()) {
            for (Path jar : jars(dir)) {
                for (ModuleCommand c : commands(jar, quiet)) {
                    byName.putIfAbsent(c.name(), c);
                }
            }
        }
        Path checkoutModules = checkoutModules();
        if (checkoutModules != null && Files.isDirectory(checkoutModules)) {
            try (DirectoryStream<Path> s = Files.newDirectoryStream(checkoutModules)) {
                for (Path module : s) {
                    for (Path jar : jars(module.resolve("target"))) {
                        for (ModuleCommand c : commands(jar, quiet)) {
                            byName.putIfAbsent(c.name(), c);
                        }
                    }
                }
            } catch (IOException e) {
                // No readable checkout: the installed places were enough.
            }
        }
        return List.copyOf(byName.values());
    }

    private static List<Path> defaultDirs(String name) {
        List<Path> dirs = installedDirs();
        Path checkout = checkoutModules();
        if (checkout != null) {
            dirs.add(checkout.resolve(name).resolve("target"));
        }
        return dirs;
    }

    /** {@code $VHOST_BLK_MODULE_DIR}, then {@code modules/} beside the server jar. */
    private static List<Path> installedDirs() {
        List<Path> dirs = new ArrayList<>();
        String env = System.getenv(ENV);
        if (env != null && !env.isBlank()) {
            dirs.add(Path.of(env));
        }
        Path here = serverJarDir();
        if (here != null) {
            dirs.add(here.resolve("modules"));
        }
        return dirs;
    }

    /** In a source checkout ({@code server/target/vhost-blk.jar}), its {@code modules/} directory. */
    private static Path checkoutModules() {
        Path here = serverJarDir();
        Path checkout = here == null || here.getParent() == null ? null : here.getParent().getParent();
        return checkout == null ? null : checkout.resolve("modules");
    }

    private static Path serverJarDir() {
        try {
            return Path.of(VhostBlkMain.class.getProtectionDomain().getCodeSource().getLocation().toURI()).getParent();
        } catch (URISyntaxException | SecurityException | NullPointerException e) {
            return null; // no code location (unusual class loader): only the explicit places count
        }
    }

    private static List<Path> jars(Path dir) {
        List<Path> jars = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return jars;
        }
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "*.jar")) {
            for (Path p : s) {
                // Maven's pre-shade leftover lacks the module's dependencies.
                if (!p.getFileName().toString().startsWith("original-")) {
                    jars.add(p);
                }
            }
        } catch (IOException e) {
            return jars;
        }
        jars.sort(null);
        return jars;
    }

    private static ModuleCommand find(Path jar, String name, PrintStream err) {
        for (ModuleCommand c : commands(jar, err)) {
            if (c.name().equals(name)) {
                return c;
            }
        }
        return null;
    }

    private static List<ModuleCommand> commands(Path jar, PrintStream err) {
        List<ModuleCommand> commands = new ArrayList<>();
        URL url;
        try {
            url = jar.toUri().toURL();
        } catch (MalformedURLException e) {
            return commands;
        }
        URLClassLoader loader = new URLClassLoader("command-" + jar.getFileName(), new URL[] {url},
                ModuleCommand.class.getClassLoader());
        try {
            for (ModuleCommand c : ServiceLoader.load(ModuleCommand.class, loader)) {
                commands.add(c);
            }
        } catch (java.util.ServiceConfigurationError | LinkageError e) {
            err.println("vhost-blk: skipping " + jar + ": " + e.getMessage());
        }
        return commands;
    }
}
