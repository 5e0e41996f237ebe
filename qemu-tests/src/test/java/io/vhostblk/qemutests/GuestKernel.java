package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/** The host's Debian kernel image and the virtio-blk modules the guest loads from its initramfs. */
record GuestKernel(String version, Path image, Map<String, byte[]> modules) {
    /** Load order: each module's dependencies come before it (see modules.dep). */
    static final List<String> VIRTIO_BLK_MODULES = List.of(
            "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk");

    private static final String KERNEL_PACKAGE = "linux-image-amd64";

    /** The newest /boot/vmlinuz-* that has a matching /lib/modules directory, with its virtio modules. */
    static GuestKernel find() {
        Path boot = Path.of("/boot");
        List<String> versions = new ArrayList<>();
        try (Stream<Path> files = Files.exists(boot) ? Files.list(boot) : Stream.empty()) {
            files.map(p -> p.getFileName().toString())
                    .filter(n -> n.startsWith("vmlinuz-"))
                    .map(n -> n.substring("vmlinuz-".length()))
                    .filter(v -> Files.isDirectory(Path.of("/lib/modules", v)))
                    .forEach(versions::add);
        } catch (IOException e) {
            fail("cannot list /boot", e);
        }
        if (versions.isEmpty()) {
            fail("no /boot/vmlinuz-* with a matching /lib/modules/<version>: install the Debian package "
                    + KERNEL_PACKAGE);
        }
        versions.sort(GuestKernel::compareVersions);
        String version = versions.getLast();
        Path image = HostTools.file(boot.resolve("vmlinuz-" + version), KERNEL_PACKAGE);
        return new GuestKernel(version, image, loadModules(Path.of("/lib/modules", version)));
    }

    /** Module name to uncompressed .ko bytes, in load order; built-in modules are left out. */
    private static Map<String, byte[]> loadModules(Path moduleDir) {
        Set<String> builtin = new HashSet<>();
        Map<String, String> relativePaths = new LinkedHashMap<>();
        try {
            Path builtinList = moduleDir.resolve("modules.builtin");
            if (Files.exists(builtinList)) {
                for (String line : Files.readAllLines(builtinList)) {
                    builtin.add(moduleName(line.strip()));
                }
            }
            for (String line : Files.readAllLines(HostTools.file(moduleDir.resolve("modules.dep"), KERNEL_PACKAGE))) {
                int colon = line.indexOf(':');
                if (colon > 0) {
                    String path = line.substring(0, colon);
                    relativePaths.put(moduleName(path), path);
                }
            }
        } catch (IOException e) {
            fail("cannot read the module lists in " + moduleDir, e);
        }
        Map<String, byte[]> modules = new LinkedHashMap<>();
        for (String name : VIRTIO_BLK_MODULES) {
            if (builtin.contains(name)) {
                continue;
            }
            String path = relativePaths.get(name);
            if (path == null) {
                fail("kernel module " + name + " is neither built in nor listed in " + moduleDir
                        + "/modules.dep: reinstall the Debian package " + KERNEL_PACKAGE);
            }
            modules.put(name, uncompressed(moduleDir.resolve(path)));
        }
        return modules;
    }

    /** busybox insmod loads plain ELF only, so compressed modules are expanded on the host. */
    private static byte[] uncompressed(Path module) {
        String name = module.getFileName().toString();
        try {
            if (name.endsWith(".ko")) {
                return Files.readAllBytes(module);
            }
            if (name.endsWith(".ko.gz")) {
                try (InputStream in = new GZIPInputStream(Files.newInputStream(module))) {
                    return in.readAllBytes();
                }
            }
            if (name.endsWith(".ko.xz")) {
                return decompressWith(HostTools.program("xz", "xz-utils"), module);
            }
            if (name.endsWith(".ko.zst")) {
                return decompressWith(HostTools.program("zstd", "zstd"), module);
            }
        } catch (IOException e) {
            fail("cannot read kernel module " + module, e);
        }
        return fail("kernel module " + module + " has an unknown compression");
    }

    private static byte[] decompressWith(Path tool, Path module) throws IOException {
        Process p = new ProcessBuilder(tool.toString(), "-dc", module.toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try (InputStream in = p.getInputStream(); ByteArrayOutputStream out = new ByteArrayOutputStream()) {
            in.transferTo(out);
            if (p.waitFor() != 0) {
                fail(tool + " could not decompress " + module);
            }
            return out.toByteArray();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return fail("interrupted decompressing " + module, e);
        } finally {
            p.destroyForcibly();
        }
    }

    private static String moduleName(String path) {
        String file = path.substring(path.lastIndexOf('/') + 1);
        int dot = file.indexOf(".ko");
        return (dot < 0 ? file : file.substring(0, dot)).replace('-', '_');
    }

    /** Compares kernel release strings number by number, so 6.10 sorts after 6.9. */
    static int compareVersions(String a, String b) {
        String[] pa = a.split("[^0-9]+");
        String[] pb = b.split("[^0-9]+");
        for (int i = 0; i < Math.min(pa.length, pb.length); i++) {
            if (pa[i].isEmpty() || pb[i].isEmpty()) {
                continue;
            }
            int c = Comparator.<Long>naturalOrder().compare(Long.parseLong(pa[i]), Long.parseLong(pb[i]));
            if (c != 0) {
                return c;
            }
        }
        return Integer.compare(pa.length, pb.length) != 0 ? Integer.compare(pa.length, pb.length) : a.compareTo(b);
    }
}
