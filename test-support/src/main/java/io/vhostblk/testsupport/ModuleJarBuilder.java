package io.vhostblk.testsupport;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.HookModule;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

/**
 * Builds module jars at test time: compiles Java sources against the hooks SPI with the JDK's
 * compiler and packs them with a service file, as a module's own build would.
 */
public final class ModuleJarBuilder {
    private final Map<String, String> sources = new LinkedHashMap<>();
    private final List<String> services = new ArrayList<>();

    /** Adds a source file for class {@code className} (binary name). */
    public ModuleJarBuilder source(String className, String code) {
        sources.put(className, code);
        return this;
    }

    /** Lists {@code className} in META-INF/services/io.vhostblk.hooks.HookModule. */
    public ModuleJarBuilder service(String className) {
        services.add(className);
        return this;
    }

    /**
     * A trivial module: class {@code pkg.Module}, called {@code name}, a new instance per attach
     * whose hooks pass every request on; loading its class sets the system property {@code vhostblk.test.loaded.NAME}
     * (so a test can tell whether any of its code ran).
     */
    public static ModuleJarBuilder passThrough(String pkg, String name, String version) {
        String cls = pkg + ".Module";
        return new ModuleJarBuilder().source(cls, """
                package %s;
                import io.vhostblk.hooks.*;
                public final class Module implements HookModule {
                    static { System.setProperty("vhostblk.test.loaded.%s", "yes"); }
                    public String name() { return "%s"; }
                    public String version() { return "%s"; }
                    public ModuleInstance create(DeviceInfo d, ModuleSettings s) {
                        return new ModuleInstance() {
                            public BlockHook openQueue(HookContext ctx) { return r -> HookAction.PASS; }
                        };
                    }
                }
                """.formatted(pkg, name, name, version)).service(cls);
    }

    /** Compiles the sources and writes the jar to {@code jar}; returns it. */
    public Path build(Path jar) throws IOException {
        Path work = Files.createTempDirectory("module-jar-src");
        try {
            Path src = work.resolve("src");
            Path classes = work.resolve("classes");
            Files.createDirectories(classes);
            List<String> args = new ArrayList<>(List.of("-d", classes.toString(), "-classpath", spiClassPath(),
                    "--release", String.valueOf(Runtime.version().feature()), "-proc:none"));
            for (Map.Entry<String, String> e : sources.entrySet()) {
                Path f = src.resolve(e.getKey().replace('.', '/') + ".java");
                Files.createDirectories(f.getParent());
                Files.writeString(f, e.getValue());
                args.add(f.toString());
            }
            JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
            if (javac == null) {
                throw new IOException("no Java compiler in this runtime (a JDK is needed, not a JRE)");
            }
            ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
            int rc = javac.run(null, diagnostics, diagnostics, args.toArray(String[]::new));
            if (rc != 0) {
                throw new IOException("compiling the test module failed:\n" + diagnostics.toString(StandardCharsets.UTF_8));
            }
            writeJar(classes, jar);
            return jar;
        } finally {
            deleteTree(work);
        }
    }

    private void writeJar(Path classes, Path jar) throws IOException {
        try (OutputStream out = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(out);
             Stream<Path> files = Files.walk(classes)) {
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                j.putNextEntry(new JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                j.write(Files.readAllBytes(f));
                j.closeEntry();
            }
            if (!services.isEmpty()) {
                j.putNextEntry(new JarEntry("META-INF/services/" + HookModule.class.getName()));
                j.write((String.join("\n", services) + "\n").getBytes(StandardCharsets.UTF_8));
                j.closeEntry();
            }
        }
    }

    /** Where the hooks and drivers SPI classes are (a classes directory or a jar each). */
    private static String spiClassPath() throws IOException {
        return location(HookModule.class) + java.io.File.pathSeparator + location(BlockRequest.class);
    }

    private static String location(Class<?> c) throws IOException {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (URISyntaxException e) {
            throw new IOException("cannot locate " + c.getName(), e);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
