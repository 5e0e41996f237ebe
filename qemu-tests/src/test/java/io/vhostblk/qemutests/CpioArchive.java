package io.vhostblk.qemutests;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * An in-memory cpio archive in the "newc" (SVR4, no CRC) format, the one the Linux kernel unpacks as
 * an initramfs.
 */
final class CpioArchive {
    private static final int S_IFDIR = 0040000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFLNK = 0120000;
    private static final int S_IFCHR = 0020000;

    private record Entry(String name, int mode, int rdevMajor, int rdevMinor, byte[] data) {
    }

    private final List<Entry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    /** Adds a directory and any missing parents; adding an existing one is a no-op. */
    CpioArchive directory(String path) {
        String name = normalise(path);
        if (name.isEmpty() || names.contains(name)) {
            return this;
        }
        addParents(name);
        return add(new Entry(name, S_IFDIR | 0755, 0, 0, new byte[0]));
    }

    /** Adds a regular file with the given permission bits (e.g. 0755), creating parent directories. */
    CpioArchive file(String path, int permissions, byte[] data) {
        String name = normalise(path);
        addParents(name);
        return add(new Entry(name, S_IFREG | (permissions & 07777), 0, 0, data));
    }

    /** Adds a symbolic link whose target is stored as the entry's data, as cpio does. */
    CpioArchive symlink(String path, String target) {
        String name = normalise(path);
        addParents(name);
        return add(new Entry(name, S_IFLNK | 0777, 0, 0, target.getBytes(StandardCharsets.UTF_8)));
    }

    /** Adds a character device node; the archive carries it, so building needs no privileges. */
    CpioArchive charDevice(String path, int major, int minor) {
        String name = normalise(path);
        addParents(name);
        return add(new Entry(name, S_IFCHR | 0600, major, minor, new byte[0]));
    }

    /** Writes the archive, including its trailer, to {@code out}. */
    void writeTo(OutputStream out) throws IOException {
        int inode = 1;
        for (Entry e : entries) {
            writeEntry(out, e, inode++, 1);
        }
        writeEntry(out, new Entry("TRAILER!!!", 0, 0, 0, new byte[0]), 0, 1);
    }

    /** The archive's bytes (for hashing). */
    byte[] toBytes() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        writeTo(out);
        return out.toByteArray();
    }

    private CpioArchive add(Entry e) {
        if (!names.add(e.name())) {
            throw new IllegalArgumentException("duplicate cpio entry " + e.name());
        }
        entries.add(e);
        return this;
    }

    private void addParents(String name) {
        int slash = name.lastIndexOf('/');
        if (slash > 0) {
            directory(name.substring(0, slash));
        }
    }

    private static String normalise(String path) {
        String name = path;
        while (name.startsWith("/")) {
            name = name.substring(1);
        }
        while (name.endsWith("/")) {
            name = name.substring(0, name.length() - 1);
        }
        return name;
    }

    private static void writeEntry(OutputStream out, Entry e, int inode, int links) throws IOException {
        byte[] name = (e.name() + "\0").getBytes(StandardCharsets.UTF_8);
        StringBuilder header = new StringBuilder(110).append("070701");
        // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
        // mtime is 0 so identical inputs give an identical archive (and cache key).
        long[] fields = {inode, e.mode(), 0, 0, links, 0, e.data().length, 0, 0, e.rdevMajor(), e.rdevMinor(),
                name.length, 0};
        for (long f : fields) {
            header.append(String.format("%08x", f));
        }
        out.write(header.toString().getBytes(StandardCharsets.US_ASCII));
        out.write(name);
        pad(out, 110 + name.length);
        out.write(e.data());
        pad(out, e.data().length);
    }

    /** newc aligns both the name (after the 110-byte header) and the data to 4 bytes. */
    private static void pad(OutputStream out, long written) throws IOException {
        int padding = (int) ((4 - (written % 4)) % 4);
        out.write(new byte[padding]);
    }
}
