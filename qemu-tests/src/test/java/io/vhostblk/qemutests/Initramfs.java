package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;

/**
 * Builds the guest's initramfs: static busybox, the /init script, the virtio-blk modules, util-linux
 * blkdiscard and fallocate with their libraries, the test pattern and the plans. The gzipped archive is cached in
 * target/ under a hash of its content, so it is rebuilt only when an input changes.
 */
final class Initramfs {
    private static final String INIT_RESOURCE = "guest-init.sh";

    private Initramfs() {
    }

    /** Builds (or reuses) the initramfs for {@code kernel} containing {@code plans}; returns its path. */
    static Path build(Path cacheDir, GuestKernel kernel, List<GuestPlan> plans) {
        try {
            byte[] archive = archive(kernel, plans).toBytes();
            String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(archive), 0, 8);
            Path target = cacheDir.resolve("initramfs-" + kernel.version() + "-" + hash + ".cpio.gz");
            Files.createDirectories(cacheDir);
            // Archives built from older inputs are never used again.
            try (Stream<Path> old = Files.list(cacheDir)) {
                for (Path p : old.filter(p -> p.getFileName().toString().startsWith("initramfs-")
                        && !p.equals(target)).toList()) {
                    Files.deleteIfExists(p);
                }
            }
            if (Files.isRegularFile(target)) {
                return target;
            }
            Path partial = Files.createTempFile(cacheDir, "initramfs-", ".partial");
            try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(partial), 1 << 16) {
                {
                    // Most of the archive is random pattern data; spend no time trying to compress it.
                    def.setLevel(Deflater.BEST_SPEED);
                }
            }) {
                out.write(archive);
            }
            Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return target;
        } catch (IOException e) {
            return fail("cannot build the guest initramfs in " + cacheDir, e);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private static CpioArchive archive(GuestKernel kernel, List<GuestPlan> plans) throws IOException {
        CpioArchive cpio = new CpioArchive();
        for (String dir : List.of("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/dev", "/proc", "/sys", "/tmp",
                "/modules", "/plans", "/ul")) {
            cpio.directory(dir);
        }
        // The kernel opens /dev/console for init before devtmpfs is mounted.
        cpio.charDevice("/dev/console", 5, 1);
        cpio.file("/bin/busybox", 0755, Files.readAllBytes(HostTools.staticBusybox()));
        cpio.symlink("/bin/sh", "busybox");
        cpio.file("/init", 0755, initScript());

        int index = 0;
        for (Map.Entry<String, byte[]> module : kernel.modules().entrySet()) {
            // The numeric prefix keeps /init's glob in dependency order.
            cpio.file(String.format("/modules/%02d-%s.ko", index++, module.getKey()), 0644, module.getValue());
        }

        // util-linux tools busybox lacks: blkdiscard -z (BLKZEROOUT) and fallocate -p (a block-device hole
        // punch, which the kernel sends as WRITE_ZEROES with no fallback to writing zero pages).
        Set<Path> libraries = new LinkedHashSet<>();
        for (String tool : List.of("blkdiscard", "fallocate")) {
            Path program = HostTools.program(tool, "util-linux");
            cpio.file("/ul/" + tool, 0755, Files.readAllBytes(program));
            libraries.addAll(HostTools.sharedLibraries(program));
        }
        for (Path library : libraries) {
            // Same path as on the host: the loader path is baked into the binaries, and /init points
            // LD_LIBRARY_PATH at the library directories.
            cpio.file(library.toString(), 0755, Files.readAllBytes(library));
        }

        cpio.file("/pattern", 0644, TestPattern.bytes());
        for (GuestPlan plan : plans) {
            cpio.file("/plans/" + plan.name(), 0644, plan.text().getBytes(StandardCharsets.US_ASCII));
        }
        return cpio;
    }

    private static byte[] initScript() throws IOException {
        try (InputStream in = Initramfs.class.getResourceAsStream(INIT_RESOURCE)) {
            if (in == null) {
                return fail("test resource " + INIT_RESOURCE + " is missing");
            }
            return in.readAllBytes();
        }
    }
}
