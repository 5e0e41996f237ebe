package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.hooks.Sha256;

import java.io.File;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** The module jars the reactor built, policies that pin them, and a server class path without them. */
final class ModuleJars {
    private static final Path MODULES = Path.of("..", "modules").toAbsolutePath().normalize();

    private ModuleJars() {
    }

    /** The Maven module whose jar serves a module name: {@code dedup} and {@code compress} are both the reduce jar. */
    static String mavenModule(String module) {
        return module.equals("dedup") || module.equals("compress") ? "reduce" : module;
    }

    /**
     * Writes {@code dir/NAME.policy} for VM {@code vm}: the modules' jars (copied into
     * {@code dir/modules}) pinned by their SHA-256, chained in the given order.
     */
    static Path writePolicy(Path dir, String name, String vm, List<String> chain) throws IOException {
        return writePolicy(dir, name, vm, chain, new String[0]);
    }

    /** As {@link #writePolicy(Path, String, String, List)}, with {@code settings} lines in every module's section. */
    static Path writePolicy(Path dir, String name, String vm, List<String> chain, String... settings) throws IOException {
        java.util.Map<String, List<String>> each = new java.util.HashMap<>();
        chain.forEach(m -> each.put(m, List.of(settings)));
        return writePolicy(dir, name, vm, chain, each);
    }

    /** As {@link #writePolicy(Path, String, String, List)}, with each module's own setting lines ({@code set.KEY = VALUE}). */
    static Path writePolicy(Path dir, String name, String vm, List<String> chain, java.util.Map<String, List<String>> settingsByModule)
            throws IOException {
        Path jars = Files.createDirectories(dir.resolve("modules"));
        StringBuilder text = new StringBuilder("# written by the qemu-tests\nvm = ").append(vm)
                .append("\nmodule-dir = ").append(jars).append("\nchain = ").append(String.join(", ", chain)).append('\n');
        for (String module : chain) {
            Path jar = jars.resolve(module + ".jar");
            if (!Files.exists(jar)) {
                Files.copy(jar(module), jar);
            }
            text.append("\n[module ").append(module).append("]\njar = ").append(jar.getFileName())
                    .append("\nsha256 = ").append(Sha256.of(jar)).append('\n');
            for (String setting : settingsByModule.getOrDefault(module, List.of())) {
                text.append(setting).append('\n');
            }
        }
        return Files.writeString(dir.resolve(name + ".policy"), text);
    }

    /** The test class path without these modules' classes: the server must load them from their jars. */
    static String serverClassPath(List<String> modules) {
        return serverClassPath(System.getProperty("java.class.path"), modules);
    }

    /** {@code classPath} without these modules' classes. */
    static String serverClassPath(String classPath, List<String> modules) {
        return Stream.of(classPath.split(File.pathSeparator))
                .filter(e -> modules.stream().map(ModuleJars::mavenModule)
                        .noneMatch(m -> e.contains("vhost-blk-module-" + m) || e.contains("modules/" + m)))
                .collect(Collectors.joining(File.pathSeparator));
    }

    /** The java binary running the tests. */
    static String java() {
        return io.vhostblk.testsupport.ServerJvm.java();
    }

    /** The module's jar as the reactor built it ({@code modules/NAME/target}), else as installed in the local repository. */
    static Path jar(String name) throws IOException {
        String module = mavenModule(name);
        String artifact = "vhost-blk-module-" + module;
        List<Path> tried = new ArrayList<>();
        Path target = MODULES.resolve(module).resolve("target");
        tried.add(target);
        Path found = newestJar(target, artifact + "-*.jar");
        if (found == null) {
            Path repo = Path.of(System.getProperty("maven.repo.local",
                    System.getProperty("user.home") + "/.m2/repository")).resolve("io/vhostblk").resolve(artifact);
            tried.add(repo);
            if (Files.isDirectory(repo)) {
                try (Stream<Path> versions = Files.list(repo)) {
                    for (Path v : versions.filter(Files::isDirectory).toList()) {
                        Path j = newestJar(v, artifact + "-*.jar");
                        if (j != null && (found == null || Files.getLastModifiedTime(j).compareTo(Files.getLastModifiedTime(found)) > 0)) {
                            found = j;
                        }
                    }
                }
            }
        }
        if (found == null) {
            return fail("no " + artifact + " jar in " + tried + " (build it: ./mvnw -B -pl modules/" + module + " -am package)");
        }
        return found;
    }

    private static Path newestJar(Path dir, String glob) throws IOException {
        if (!Files.isDirectory(dir)) {
            return null;
        }
        Path newest = null;
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, glob)) {
            for (Path p : s) {
                String n = p.getFileName().toString();
                if (n.endsWith("-sources.jar") || n.endsWith("-javadoc.jar") || n.endsWith("-tests.jar")) {
                    continue;
                }
                if (newest == null || Files.getLastModifiedTime(p).compareTo(Files.getLastModifiedTime(newest)) > 0) {
                    newest = p;
                }
            }
        }
        return newest;
    }
}
