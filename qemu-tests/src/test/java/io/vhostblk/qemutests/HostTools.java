package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds the host programs and files the guest tests need, and fails (never skips) with the Debian
 * package to install when one is missing.
 */
final class HostTools {
    private static final List<String> SEARCH_DIRS = searchDirs();
    private static final Pattern LDD_ARROW = Pattern.compile("=>\\s*(/\\S+)");
    private static final Pattern LDD_PLAIN = Pattern.compile("^\\s*(/\\S+)\\s+\\(0x");

    private HostTools() {
    }

    /** The executable {@code name} from PATH or the sbin directories; fails naming {@code debianPackage}. */
    static Path program(String name, String debianPackage) {
        for (String dir : SEARCH_DIRS) {
            Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        return fail(name + " is not installed (searched " + String.join(":", SEARCH_DIRS)
                + "): install the Debian package " + debianPackage
                + " (apt-get install " + debianPackage + ")");
    }

    /** {@code file}, which must exist and be readable; fails naming {@code debianPackage}. */
    static Path file(Path file, String debianPackage) {
        if (!Files.isRegularFile(file)) {
            return fail(file + " does not exist: install the Debian package " + debianPackage);
        }
        if (!Files.isReadable(file)) {
            return fail(file + " is not readable by this user (tests run as " + System.getProperty("user.name")
                    + "); it comes from the Debian package " + debianPackage);
        }
        return file;
    }

    /** A statically linked busybox: the guest has no C library unless we copy one in. */
    static Path staticBusybox() {
        Path busybox = file(Path.of("/bin/busybox"), "busybox-static");
        if (hasInterpreter(busybox)) {
            return fail(busybox + " is dynamically linked: install the Debian package busybox-static "
                    + "(it replaces the dynamic busybox package)");
        }
        return busybox;
    }

    /**
     * The shared libraries (including the dynamic loader) that {@code program} loads, as ldd reports
     * them; the guest needs them at the same paths.
     */
    static List<Path> sharedLibraries(Path program) {
        Path ldd = program("ldd", "libc-bin");
        String output = run(List.of(ldd.toString(), program.toString()), 30);
        Set<Path> libraries = new LinkedHashSet<>();
        for (String line : output.split("\n")) {
            if (line.contains("not found")) {
                fail("ldd cannot resolve a library of " + program + ": " + line.strip());
            }
            Matcher arrow = LDD_ARROW.matcher(line);
            Matcher plain = LDD_PLAIN.matcher(line);
            if (arrow.find()) {
                libraries.add(Path.of(arrow.group(1)));
            } else if (plain.find()) {
                libraries.add(Path.of(plain.group(1)));
            }
        }
        if (libraries.isEmpty()) {
            fail("ldd reported no libraries for " + program + ":\n" + output);
        }
        return new ArrayList<>(libraries);
    }

    /** Runs a short host command to completion and returns its merged output; fails on error or timeout. */
    static String run(List<String> command, int timeoutSeconds) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            try {
                byte[] out = p.getInputStream().readAllBytes();
                if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                    fail(String.join(" ", command) + " did not finish within " + timeoutSeconds + " s");
                }
                String text = new String(out);
                if (p.exitValue() != 0) {
                    fail(String.join(" ", command) + " exited with " + p.exitValue() + ":\n" + text);
                }
                return text;
            } finally {
                p.destroyForcibly();
            }
        } catch (IOException e) {
            return fail("cannot run " + String.join(" ", command), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return fail("interrupted running " + String.join(" ", command), e);
        }
    }

    /** Whether an x86-64 ELF executable has a PT_INTERP program header, i.e. is dynamically linked. */
    static boolean hasInterpreter(Path elf) {
        try (FileChannel ch = FileChannel.open(elf)) {
            ByteBuffer header = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(header, 0);
            if (header.getInt(0) != 0x464c457f || header.get(4) != 2) {
                fail(elf + " is not a 64-bit ELF file");
            }
            long phoff = header.getLong(0x20);
            int phentsize = header.getShort(0x36) & 0xffff;
            int phnum = header.getShort(0x38) & 0xffff;
            ByteBuffer ph = ByteBuffer.allocate(phentsize * phnum).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(ph, phoff);
            for (int i = 0; i < phnum; i++) {
                if (ph.getInt(i * phentsize) == 3) { // PT_INTERP
                    return true;
                }
            }
            return false;
        } catch (IOException e) {
            return fail("cannot read " + elf, e);
        }
    }

    private static List<String> searchDirs() {
        Set<String> dirs = new LinkedHashSet<>();
        String path = System.getenv("PATH");
        if (path != null) {
            for (String d : path.split(":")) {
                if (!d.isBlank()) {
                    dirs.add(d);
                }
            }
        }
        // CI and IDEs may run without the sbin directories on PATH; Debian keeps qemu-storage-daemon's
        // siblings and util-linux's admin tools there.
        dirs.addAll(List.of("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"));
        return List.copyOf(dirs);
    }
}
