package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vhostblk.testsupport.ServerJvm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * packaging/jvm.options and packaging/launch.sh: the one java command line of the launchers, the systemd unit
 * (through the installed launcher) and the tests' servers.
 */
class JvmOptionsTest {
    private static final Path LAUNCH = Path.of("..", "packaging", "launch.sh").toAbsolutePath().normalize();

    @Test
    void everyOptionOfTheFileIsAcceptedAndInEffect() throws Exception {
        Result r = run(List.of(ServerJvm.java(), ServerJvm.OPTIONS, "-XX:+PrintFlagsFinal", "-version"), Map.of());
        assertEquals(0, r.status, r.err);
        List<String> flags = Files.readAllLines(ServerJvm.optionsFile()).stream()
                .map(l -> l.replaceAll("#.*", "").strip())
                .filter(l -> l.startsWith("-XX:"))
                .map(l -> l.substring(4).replaceAll("^[+-]", "").replaceAll("=.*", ""))
                .toList();
        assertFalse(flags.isEmpty(), "no -XX: option in " + ServerJvm.optionsFile());
        for (String flag : flags) {
            assertTrue(r.out.lines().anyMatch(l -> l.matches("\\s*\\S+\\s+" + flag + "\\s+=.*\\{command line\\}.*")),
                    flag + " is not set from the command line:\n" + r.out.lines().filter(l -> l.contains(flag)).toList());
        }
    }

    @Test
    void anUnusableAotCacheIsReportedOnStandardErrorAndTheCommandStillRuns(@TempDir Path dir) throws Exception {
        Path cache = Files.write(dir.resolve("vhost-blk.aot"), new byte[4096]);
        Result r = run(List.of(ServerJvm.java(), ServerJvm.OPTIONS, "-XX:AOTCache=" + cache, "-cp",
                System.getProperty("java.class.path"), VhostBlkMain.class.getName(), "xml", "--socket", "/run/vb.sock"), Map.of());
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.startsWith("<!-- vhost-blk"), "standard output is not only the XML:\n" + r.out);
        assertTrue(r.err.contains("[aot]"), "the JVM did not say it ignored the cache:\n" + r.err);
    }

    @Test
    void theLauncherPassesTheCacheOnlyWhenItIsNotOlderThanTheJar(@TempDir Path dir) throws Exception {
        // A stand-in java that prints its arguments, one a line.
        Path bin = Files.createDirectories(dir.resolve("jdk/bin"));
        Path java = Files.writeString(bin.resolve("java"), "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path options = Files.writeString(dir.resolve("jvm.options"), "-XX:+UseSerialGC\n");
        Path jar = Files.write(dir.resolve("vhost-blk.jar"), new byte[1]);
        Path aot = dir.resolve("vhost-blk.aot");
        Files.setLastModifiedTime(jar, FileTime.fromMillis(1_700_000_000_000L));

        Result none = launch(dir, options, jar);
        assertEquals(List.of("@" + options, "-Xss1m", "-jar", jar.toString(), "serve", "--help"), none.out.lines().toList());
        assertEquals("", none.err);

        Files.write(aot, new byte[1]);
        Files.setLastModifiedTime(aot, FileTime.fromMillis(1_700_000_001_000L));
        Result fresh = launch(dir, options, jar);
        assertEquals(List.of("@" + options, "-XX:AOTCache=" + aot, "-Xss1m", "-jar", jar.toString(), "serve", "--help"),
                fresh.out.lines().toList());
        assertEquals("", fresh.err);

        Files.setLastModifiedTime(aot, FileTime.fromMillis(1_699_999_999_000L));
        Result stale = launch(dir, options, jar);
        assertEquals(none.out, stale.out);
        assertTrue(stale.err.contains(aot + " is older than " + jar + ", starting without it"), stale.err);
    }

    @Test
    void aFailedCacheAssemblyLeavesNoCacheAndSaysWhy(@TempDir Path dir) throws Exception {
        // A stand-in java that behaves as JDK 25.0.3 did when assembling crashed: an empty cache, exit status 0.
        Path java = Files.writeString(dir.resolve("java"), """
                #!/bin/sh
                for a in "$@"; do case $a in -XX:AOTCacheOutput=*) : > "${a#-XX:AOTCacheOutput=}" ;; esac; done
                echo "assembling crashed"
                """);
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path cache = dir.resolve("vhost-blk.aot");
        Result r = run(List.of("sh", Path.of("..", "packaging", "aot-cache.sh").toAbsolutePath().normalize().toString(),
                java.toString(), dir.resolve("vhost-blk.jar").toString(), cache.toString()), Map.of());
        assertEquals(0, r.status, r.err);
        assertFalse(Files.exists(cache), "an empty cache was left for the launchers");
        assertTrue(r.err.contains("the training run failed") && r.err.contains("assembling crashed"), r.err);
    }

    private static Result launch(Path dir, Path options, Path jar) throws Exception {
        return run(List.of("sh", "-c", ". \"$0\"; vhost_blk_exec \"$1\" \"$2\" \"$3\" serve --help", LAUNCH.toString(),
                dir.resolve("jdk").toString(), options.toString(), jar.toString()), Map.of("VHOST_BLK_JAVA_OPTS", "-Xss1m"));
    }

    private record Result(int status, String out, String err) {
    }

    private static Result run(List<String> command, Map<String, String> env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putAll(env);
        Process p = pb.start();
        List<String> outputs = new ArrayList<>();
        Thread errReader = Thread.ofPlatform().start(() -> {
            try {
                outputs.add(new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
            } catch (java.io.IOException e) {
                outputs.add("(cannot read standard error: " + e + ")");
            }
        });
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), command + " did not finish");
        errReader.join();
        return new Result(p.exitValue(), out, outputs.getFirst());
    }
}
