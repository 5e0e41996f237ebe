package io.vhostblk.qemutests;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/** The host-side image file: created from a plan's initial content, then compared with what the plan expects. */
final class DiskImage {
    private static final int SECTOR = 512;
    private static final int MAX_REPORTED_RANGES = 8;

    private DiskImage() {
    }

    /** Creates a sparse image of the plan's size holding its initial content (zeros elsewhere). */
    static void create(Path image, GuestPlan plan) throws IOException {
        Files.deleteIfExists(image);
        try (RandomAccessFile file = new RandomAccessFile(image.toFile(), "rw")) {
            file.setLength(plan.diskSize());
            for (GuestPlan.Region r : plan.initialContent()) {
                file.seek(r.diskOffset());
                file.write(TestPattern.bytes(), (int) r.patternOffset(), (int) r.length());
            }
        }
    }

    /** SHA-256 of the whole file, hex. */
    static String sha256(Path image) throws IOException {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            digest.update(Files.readAllBytes(image));
            return HexFormat.of().formatHex(digest.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * Compares the image with {@code expected}; returns null when identical, else a description of the
     * differing sector ranges and which plan operation each belongs to.
     */
    static String compare(Path image, byte[] expected, GuestPlan plan) throws IOException {
        long size = Files.size(image);
        if (size != expected.length) {
            return "image is " + size + " bytes, expected " + expected.length;
        }
        byte[] actual = new byte[expected.length];
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer buffer = ByteBuffer.wrap(actual);
            while (buffer.hasRemaining() && ch.read(buffer, buffer.position()) >= 0) {
                // read until full
            }
        }
        List<long[]> ranges = new ArrayList<>(); // [first sector, sector count]
        long badSectors = 0;
        for (int off = 0; off < expected.length; off += SECTOR) {
            if (Arrays.mismatch(actual, off, off + SECTOR, expected, off, off + SECTOR) >= 0) {
                badSectors++;
                long sector = off / SECTOR;
                long[] last = ranges.isEmpty() ? null : ranges.getLast();
                if (last != null && last[0] + last[1] == sector) {
                    last[1]++;
                } else {
                    ranges.add(new long[] {sector, 1});
                }
            }
        }
        if (ranges.isEmpty()) {
            return null;
        }
        StringBuilder why = new StringBuilder().append(badSectors).append(" of ").append(expected.length / SECTOR)
                .append(" sectors differ from what the guest wrote, in ").append(ranges.size()).append(" range(s):");
        for (long[] r : ranges.subList(0, Math.min(MAX_REPORTED_RANGES, ranges.size()))) {
            long offset = r[0] * SECTOR;
            boolean zeros = isZero(actual, (int) offset, (int) (r[1] * SECTOR));
            why.append("\n  bytes [").append(offset).append(", ").append(offset + r[1] * SECTOR).append(") ")
                    .append(plan.describeOffset(offset)).append("; the file holds ")
                    .append(zeros ? "zeros" : "other data");
        }
        if (ranges.size() > MAX_REPORTED_RANGES) {
            why.append("\n  ...");
        }
        return why.toString();
    }

    /** Compares one byte range of the image with pattern data; null when equal. */
    static String compareRange(Path image, GuestPlan.Region region) throws IOException {
        byte[] actual = new byte[(int) region.length()];
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer buffer = ByteBuffer.wrap(actual);
            while (buffer.hasRemaining()
                    && ch.read(buffer, region.diskOffset() + buffer.position()) >= 0) {
                // read until full or end of file
            }
        }
        int po = (int) region.patternOffset();
        int at = Arrays.mismatch(actual, 0, actual.length, TestPattern.bytes(), po, po + actual.length);
        return at < 0 ? null : "image byte " + (region.diskOffset() + at) + " (of [" + region.diskOffset() + ", "
                + (region.diskOffset() + region.length()) + ")) does not hold the flushed data";
    }

    /** Null when {@code actual} equals {@code expected}, else where they first differ. */
    static String firstDifference(byte[] expected, byte[] actual) {
        if (expected.length != actual.length) {
            return "length " + actual.length + ", expected " + expected.length;
        }
        int at = Arrays.mismatch(expected, actual);
        return at < 0 ? null : "first difference at byte " + at;
    }

    /** As {@link #firstDifference(byte[], byte[])} for a whole disk, naming the plan's operation at the first difference. */
    static String firstDifference(byte[] expected, byte[] actual, GuestPlan plan) {
        String diff = firstDifference(expected, actual);
        int at = Arrays.mismatch(expected, actual);
        return diff == null || at >= expected.length || at >= actual.length ? diff : diff + " (" + plan.describeOffset(at) + ")";
    }

    /** Where {@code needle} first stands in {@code haystack}, or -1. */
    static long indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static boolean isZero(byte[] data, int from, int length) {
        for (int i = from; i < from + length; i++) {
            if (data[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
