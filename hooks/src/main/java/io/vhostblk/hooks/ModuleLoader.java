package io.vhostblk.hooks;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;

/**
 * Loads module jars from a module directory, each in its own class loader after its SHA-256 was
 * checked against the digest the policy names. Two names served by one jar (the same bytes: {@code dedup}
 * and {@code compress} from the reduce jar) share its loader, so one engine can serve both.
 *
 * <p>Each jar's loader has the loader of the hooks SPI as its parent, so a module sees
 * {@code io.vhostblk.hooks.*} and {@code io.vhostblk.drivers.*} (one copy, shared with the
 * server) but not the classes of other modules. The jar is read once, hashed, and loaded from a
 * private copy of exactly the bytes that were hashed: replacing the file in the module directory
 * between the check and the load cannot smuggle in other code.
 */
public final class ModuleLoader implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ModuleLoader.class.getName());

    private final Path moduleDir;
    private final List<URLClassLoader> loaders = new ArrayList<>();
    /** The loader of each jar loaded so far, by its SHA-256. */
    private final java.util.Map<String, URLClassLoader> bySha256 = new java.util.HashMap<>();
    private final List<Path> copies = new ArrayList<>();
    private Path privateDir;

    public ModuleLoader(Path moduleDir) {
        this.moduleDir = moduleDir;
    }

    public Path moduleDir() {
        return moduleDir;
    }

    /** The jar path a policy's {@code jar = ...} names: relative names are inside the module directory. */
    public Path resolve(String jar) {
        return moduleDir.resolve(jar).normalize();
    }

    /**
     * Checks the jar's digest, then loads the {@link HookModule} it provides and checks its name.
     *
     * @param name           the module name the policy gives it
     * @param jar            the jar, relative to the module directory or absolute
     * @param expectedSha256 the policy's digest (64 hex digits)
     * @param origin         where the policy declared it, e.g. {@code policy.conf:12}, for messages
     * @throws ModuleException naming origin, module and jar: unreadable, digest mismatch (nothing is
     *                         loaded), no module in the jar, or a module of another name
     */
    public LoadedModule load(String name, String jar, String expectedSha256, String origin) throws ModuleException {
        String where = origin + ": module " + name + ": jar " + resolve(jar);
        Path path = resolve(jar);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new ModuleException(where + ": cannot read it: " + e, e);
        }
        String actual = Sha256.of(bytes);
        if (!actual.equalsIgnoreCase(expectedSha256)) {
            LOG.log(Level.ERROR, where + ": refused: SHA-256 mismatch");
            throw new ModuleException(where + ": SHA-256 mismatch: the policy expects " + expectedSha256.toLowerCase(java.util.Locale.ROOT)
                    + ", the jar has " + actual + "; refused, nothing from it was loaded");
        }
        URLClassLoader shared = bySha256.get(actual);
        if (shared != null) {
            HookModule module = discover(shared, name, where);
            LOG.log(Level.INFO, "loaded module " + module.name() + " " + module.version() + " from " + path
                    + " sha256 " + actual + " (sharing the class loader of that jar)");
            return new LoadedModule(module, path, actual);
        }
        URLClassLoader loader = new URLClassLoader("module-" + name, new URL[] {privateCopy(bytes, path, where)},
                HookModule.class.getClassLoader());
        try {
            HookModule module = discover(loader, name, where);
            loaders.add(loader);
            bySha256.put(actual, loader);
            LoadedModule loaded = new LoadedModule(module, path, actual);
            LOG.log(Level.INFO, "loaded module " + module.name() + " " + module.version() + " from " + path
                    + " sha256 " + actual);
            return loaded;
        } catch (ModuleException | RuntimeException | LinkageError e) {
            closeQuietlyAfter(loader, e);
            throw e;
        }
    }

    /** The one HookModule the jar itself provides (providers the parent loader sees are not the jar's). */
    private static HookModule discover(URLClassLoader loader, String name, String where) throws ModuleException {
        List<HookModule> found = new ArrayList<>();
        try {
            for (ServiceLoader.Provider<HookModule> p : ServiceLoader.load(HookModule.class, loader).stream().toList()) {
                if (p.type().getClassLoader() == loader) {
                    found.add(p.get());
                }
            }
        } catch (ServiceConfigurationError | LinkageError e) {
            throw new ModuleException(where + ": its HookModule cannot be loaded: " + e, e);
        }
        if (found.isEmpty()) {
            throw new ModuleException(where + ": provides no " + HookModule.class.getName()
                    + " (META-INF/services/" + HookModule.class.getName() + " missing or naming no class of the jar)");
        }
        List<String> names = new ArrayList<>();
        for (HookModule m : found) {
            if (name.equals(m.name())) {
                return m;
            }
            names.add(m.name());
        }
        throw new ModuleException(where + ": provides module(s) " + String.join(", ", names) + ", not " + name);
    }

    private URL privateCopy(byte[] bytes, Path jar, String where) throws ModuleException {
        try {
            if (privateDir == null) {
                privateDir = Files.createTempDirectory("vhost-blk-modules-",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            }
            Path copy = Files.createTempFile(privateDir, jar.getFileName().toString() + "-", ".jar");
            Files.write(copy, bytes);
            copies.add(copy);
            return copy.toUri().toURL();
        } catch (IOException e) {
            throw new ModuleException(where + ": cannot make the private copy to load it from: " + e, e);
        }
    }

    private static void closeQuietlyAfter(URLClassLoader loader, Throwable primary) {
        try {
            loader.close();
        } catch (IOException e) {
            primary.addSuppressed(e);
        }
    }

    /** Closes the modules' class loaders and deletes the private copies; call once no module is in use. */
    @Override
    public void close() {
        for (URLClassLoader l : loaders) {
            try {
                l.close();
            } catch (IOException e) {
                LOG.log(Level.WARNING, "closing module class loader " + l.getName() + ": " + e);
            }
        }
        loaders.clear();
        bySha256.clear();
        for (Path p : copies) {
            deleteLogged(p);
        }
        copies.clear();
        if (privateDir != null) {
            deleteLogged(privateDir);
            privateDir = null;
        }
    }

    private static void deleteLogged(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "cannot delete " + p + ": " + e);
        }
    }
}
