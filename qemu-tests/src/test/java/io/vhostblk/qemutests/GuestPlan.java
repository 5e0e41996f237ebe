package io.vhostblk.qemutests;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A script of block-device operations one guest boot performs on /dev/vda, together with what the
 * host expects afterwards: the checks the guest must report as passed and the exact image content.
 *
 * <p>The guest's /init reads the plan's text (one operation a line, see guest-init.sh) from the
 * initramfs; the Java side replays the same operations on an in-memory image to know the expected
 * bytes. Data always comes from {@link TestPattern} at a given pattern offset.
 */
final class GuestPlan {
    /** A byte range of the disk and what it should hold: pattern bytes from {@code patternOffset}, or zeros. */
    record Region(String check, long diskOffset, long length, long patternOffset) {
        static final long ZEROS = -1;

        boolean isZeros() {
            return patternOffset == ZEROS;
        }

        boolean contains(long offset) {
            return offset >= diskOffset && offset < diskOffset + length;
        }
    }

    private static final int SECTOR = 512;

    private final String name;
    private final long diskSize;
    private final int vcpus;
    private final int queues;
    private final boolean readOnly;
    private final List<String> lines = new ArrayList<>();
    private final Set<String> checks = new LinkedHashSet<>();
    private final List<Region> initialContent = new ArrayList<>();
    private final List<Region> effects = new ArrayList<>();
    private final Map<String, Region> flushedWrites = new LinkedHashMap<>();

    private GuestPlan(String name, long diskSize, int vcpus, int queues, boolean readOnly) {
        this(name, diskSize, diskSize, vcpus, queues, readOnly);
    }

    private GuestPlan(String name, long bootSize, long diskSize, int vcpus, int queues, boolean readOnly) {
        if (!name.matches("[a-z0-9-]+")) {
            throw new IllegalArgumentException("plan names go on the kernel command line: " + name);
        }
        this.name = name;
        this.diskSize = diskSize;
        this.vcpus = vcpus;
        this.queues = queues;
        this.readOnly = readOnly;
        // /init reports the device before it runs any operation.
        checks.add("device");
        lines.add("capacity capacity " + bootSize);
        checks.add("capacity");
    }

    /** A plan for a writable disk of {@code diskSize} bytes served with {@code queues} queues to {@code vcpus} vCPUs. */
    static GuestPlan writable(String name, long diskSize, int vcpus, int queues) {
        return new GuestPlan(name, diskSize, vcpus, queues, false);
    }

    /**
     * A plan for a writable disk that boots at {@code bootSize} bytes and is resized to {@code diskSize}
     * ({@link #hostResize}); ranges and the expected image are those of the final size.
     */
    static GuestPlan growing(String name, long bootSize, long diskSize) {
        return new GuestPlan(name, bootSize, diskSize, 1, 1, false);
    }

    /** A plan for a disk exported read-only. */
    static GuestPlan readOnly(String name, long diskSize) {
        return new GuestPlan(name, diskSize, 1, 1, true);
    }

    String name() {
        return name;
    }

    long diskSize() {
        return diskSize;
    }

    int vcpus() {
        return vcpus;
    }

    int queues() {
        return queues;
    }

    boolean isReadOnly() {
        return readOnly;
    }

    /** The checks the guest must print {@code VBTEST PASS} for, in plan order. */
    List<String> checks() {
        return List.copyOf(checks);
    }

    /** The plan as /init reads it. */
    String text() {
        return "# plan " + name + "\n" + String.join("\n", lines) + "\n";
    }

    /** The data the host puts on the image before the guest boots. */
    List<Region> initialContent() {
        return List.copyOf(initialContent);
    }

    /** The buffered-then-fsynced write the guest announced with {@code VBTEST SYNCED <check>}, or null. */
    Region flushedWrite(String check) {
        return flushedWrites.get(check);
    }

    /** The whole image as it must be after the plan ran. */
    byte[] expectedImage() {
        if (diskSize > Integer.MAX_VALUE) {
            throw new IllegalStateException("expected image too large to model in memory");
        }
        byte[] image = new byte[(int) diskSize];
        for (Region r : initialContent) {
            apply(image, r);
        }
        for (Region r : effects) {
            apply(image, r);
        }
        return image;
    }

    /** Which operation last wrote {@code offset}, for failure messages. */
    String describeOffset(long offset) {
        for (Region r : effects.reversed()) {
            if (r.contains(offset)) {
                return (r.isZeros() ? "zeroed by " : "written by ") + r.check();
            }
        }
        for (Region r : initialContent) {
            if (r.contains(offset)) {
                return "pre-filled by the host";
            }
        }
        return "never written (must read as zeros)";
    }

    // ---- operations; each adds a guest line and, where it changes the disk, an effect ----

    /** Puts pattern data on the image before boot. */
    GuestPlan prefill(long diskOffset, long length, long patternOffset) {
        checkRange(diskOffset, length, patternOffset);
        initialContent.add(new Region("prefill", diskOffset, length, patternOffset));
        return this;
    }

    /** Compares a sysfs attribute of /sys/block/vda ({@code eq} on text with spaces as '_', or {@code gt} numerically). */
    GuestPlan sysfs(String check, String attribute, String comparison, String value) {
        if (!comparison.equals("eq") && !comparison.equals("gt")) {
            throw new IllegalArgumentException(comparison);
        }
        return op(check, "sysfs", attribute, comparison, value);
    }

    /** Writes pattern data with O_DIRECT in blocks of {@code blockSize}. */
    GuestPlan write(String check, int blockSize, long diskOffset, long length, long patternOffset) {
        checkBlocks(blockSize, diskOffset, length);
        checkRange(diskOffset, length, patternOffset);
        effects.add(new Region(check, diskOffset, length, patternOffset));
        return op(check, "write", blockSize, diskOffset, length, patternOffset);
    }

    /** Reads with O_DIRECT in blocks of {@code blockSize} and compares with the pattern. */
    GuestPlan read(String check, int blockSize, long diskOffset, long length, long patternOffset) {
        checkBlocks(blockSize, diskOffset, length);
        checkRange(diskOffset, length, patternOffset);
        return op(check, "read", blockSize, diskOffset, length, patternOffset);
    }

    /** Writes zeros (from /dev/zero) with O_DIRECT in blocks of {@code blockSize}: ordinary WRITEs whose data is all zero. */
    GuestPlan writeZeros(String check, int blockSize, long diskOffset, long length) {
        checkBlocks(blockSize, diskOffset, length);
        checkRange(diskOffset, length, 0);
        effects.add(new Region(check, diskOffset, length, Region.ZEROS));
        return op(check, "writezero", blockSize, diskOffset, length);
    }

    /** Reads with O_DIRECT and expects zeros. */
    GuestPlan readZeros(String check, int blockSize, long diskOffset, long length) {
        checkBlocks(blockSize, diskOffset, length);
        checkRange(diskOffset, length, 0);
        return op(check, "readzero", blockSize, diskOffset, length);
    }

    /** Starts an O_DIRECT writer in the background, pinned to {@code cpu}; {@link #waitWriters} collects it. */
    GuestPlan backgroundWrite(String check, int cpu, int blockSize, long diskOffset, long length, long patternOffset) {
        checkBlocks(blockSize, diskOffset, length);
        checkRange(diskOffset, length, patternOffset);
        if (cpu >= vcpus) {
            throw new IllegalArgumentException("cpu " + cpu + " but only " + vcpus + " vCPUs");
        }
        effects.add(new Region(check, diskOffset, length, patternOffset));
        return op(check, "bgwrite", cpu, blockSize, diskOffset, length, patternOffset);
    }

    /** Waits for all background writers; each passes or fails under its own check name. */
    GuestPlan waitWriters(String check) {
        return op(check, "wait");
    }

    /** Checks /sys/block/vda/mq has {@code count} hardware queues. */
    GuestPlan hardwareQueues(String check, int count) {
        return op(check, "mqueues", count);
    }

    /** Checks that each of the first {@code count} virtqueues completed requests (its interrupt fired). */
    GuestPlan queuesUsed(String check, int count) {
        return op(check, "queueirqs", count);
    }

    /** Puts the device in write-back mode (so fsync sends FLUSH) and checks it is. */
    GuestPlan writeBack(String check) {
        return op(check, "writeback");
    }

    /** Switches the guest's cache mode through cache_type (write back or write through) and checks it took. */
    GuestPlan cacheMode(String check, boolean writeBack) {
        return op(check, "cachemode", writeBack ? "back" : "through");
    }

    /**
     * {@code count} buffered 4 KiB writes from {@code diskOffset} on, each followed by fsync; the
     * guest checks it sent a FLUSH per fsync in write-back mode and none in write-through mode, and
     * reports the counts and the elapsed time. The data is the plan's pattern; the host does not check it.
     */
    GuestPlan syncLoop(String check, int count, long diskOffset) {
        checkBlocks(4096, diskOffset, 4096L * count);
        return op(check, "syncloop", count, diskOffset);
    }

    /** BLKDISCARD on a range; the guest checks the discard counter rose and the host expects zeros there. */
    GuestPlan discard(String check, long diskOffset, long length) {
        return zeroing(check, "discard", diskOffset, length);
    }

    /** BLKZEROOUT (blkdiscard -z) on a range, which virtio-blk sends as WRITE_ZEROES. */
    GuestPlan zeroOut(String check, long diskOffset, long length) {
        return zeroing(check, "zeroout", diskOffset, length);
    }

    /**
     * fallocate --punch-hole on /dev/vda: WRITE_ZEROES with the unmap flag allowed, and no fallback,
     * so it passes only if the device itself zeroes the range.
     */
    GuestPlan punchHole(String check, long diskOffset, long length) {
        return zeroing(check, "punch", diskOffset, length);
    }

    /** A guest operation {@code op} on whole sectors after which the range reads as zeros. */
    private GuestPlan zeroing(String check, String op, long diskOffset, long length) {
        checkBlocks(SECTOR, diskOffset, length);
        checkRange(diskOffset, length, 0);
        effects.add(new Region(check, diskOffset, length, Region.ZEROS));
        return op(check, op, diskOffset, length);
    }

    /**
     * A buffered write followed by fsync (which the block layer turns into a virtio-blk FLUSH); the
     * guest then prints {@code VBTEST SYNCED <check>} and waits until the host has inspected the image.
     */
    GuestPlan flushedWrite(String check, int blockSize, long diskOffset, long length, long patternOffset) {
        checkBlocks(blockSize, diskOffset, length);
        checkRange(diskOffset, length, patternOffset);
        Region region = new Region(check, diskOffset, length, patternOffset);
        effects.add(region);
        flushedWrites.put(check, region);
        return op(check, "flush", blockSize, diskOffset, length, patternOffset);
    }

    /**
     * A write+verify loop for restart tests: each of {@code generations} rounds writes every one of
     * {@code blocks} 4 KiB blocks with {@link #generationBlock} (4 O_DIRECT writers in parallel), fsyncs, reads all back
     * and compares, then prints {@code VBTEST SYNCED gen-<g>} and waits for the host. What the disk
     * holds is the last generation's blocks; the host checks that itself at each SYNCED.
     */
    GuestPlan generations(String check, int blocks, int generations) {
        checkRange(0, (long) blocks * GENERATION_BLOCK, 0);
        if (blocks % 4 != 0) {
            throw new IllegalArgumentException("4 writers share the blocks: " + blocks);
        }
        return op(check, "genloop", blocks, generations);
    }

    static final int GENERATION_BLOCK = 4096;

    /**
     * Four O_DIRECT writers rewrite their quarter of {@code blocks} with {@link #generationBlock},
     * generation after generation, while the host migrates the guest ({@code VBTEST SYNCED migrate},
     * answered from the destination); then each quarter must hold its writer's last generation, and
     * generation {@code finalGeneration} is written to every block, fsynced and read back. Two readers
     * meanwhile verify the MiB at {@code readAt}, which the caller prefills with pattern bytes from 0.
     */
    GuestPlan migrationWrites(String check, int blocks, int finalGeneration, long readAt) {
        checkRange(0, (long) blocks * GENERATION_BLOCK, 0);
        checkRange(readAt, 1 << 20, 0);
        if (blocks % 4 != 0 || readAt < (long) blocks * GENERATION_BLOCK) {
            throw new IllegalArgumentException("4 writers share the blocks, and the read MiB lies after them: "
                    + blocks + ", " + readAt);
        }
        return op(check, "migwrite", blocks, finalGeneration, readAt);
    }

    /** The content of block {@code block} in generation {@code generation}: "%07d:%07d\n" repeated. */
    static byte[] generationBlock(int block, int generation) {
        byte[] record = String.format("%07d:%07d\n", block, generation).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] out = new byte[GENERATION_BLOCK];
        for (int i = 0; i < out.length; i++) {
            out[i] = record[i % record.length];
        }
        return out;
    }

    /** The host resizes the disk to {@code bytes} ({@code SYNCED check}); the guest must then see that capacity. */
    GuestPlan hostResize(String check, long bytes) {
        if (bytes != diskSize) {
            throw new IllegalArgumentException("the plan's disk size is the size after the resize: " + diskSize);
        }
        return op(check, "hostresize", bytes);
    }

    /** The host plugs a DIMM ({@code SYNCED check}); the guest onlines the new memory as movable. */
    GuestPlan memoryHotplug(String check) {
        return op(check, "memhotplug");
    }

    /** O_DIRECT reads of whole MiBs into a fresh buffer, then {@code SYNCED check} for the host to look at guest memory. */
    GuestPlan hotRead(String check, long diskOffset, long length) {
        checkBlocks(1 << 20, diskOffset, length);
        checkRange(diskOffset, length, 0);
        return op(check, "hotread", diskOffset, length);
    }

    /** fsync of /dev/vda: a FLUSH, so everything written before is durable when the host looks. */
    GuestPlan fsync(String check) {
        return op(check, "fsync");
    }

    /** An O_DIRECT write that must be refused because the device is read-only. */
    GuestPlan writeRefused(String check, long diskOffset, int length) {
        checkBlocks(length, diskOffset, length);
        return op(check, "writefails", diskOffset, length);
    }

    /** One O_DIRECT read or write of {@code length} bytes that the device must fail with an I/O error. */
    GuestPlan ioFails(String check, String readOrWrite, long diskOffset, int length) {
        if (!readOrWrite.equals("read") && !readOrWrite.equals("write")) {
            throw new IllegalArgumentException("read or write, not " + readOrWrite);
        }
        checkBlocks(length, diskOffset, length);
        return op(check, "iofails", readOrWrite, diskOffset, length);
    }

    /** A discard that must be refused because the device is read-only. */
    GuestPlan discardRefused(String check, long diskOffset, long length) {
        checkBlocks(SECTOR, diskOffset, length);
        return op(check, "discardfails", diskOffset, length);
    }

    private GuestPlan op(String check, String op, Object... args) {
        if (!check.matches("[a-z0-9-]+")) {
            throw new IllegalArgumentException("check names are single shell words: " + check);
        }
        if (!checks.add(check)) {
            throw new IllegalArgumentException("duplicate check " + check + " in plan " + name);
        }
        StringBuilder line = new StringBuilder(op).append(' ').append(check);
        for (Object a : args) {
            line.append(' ').append(a);
        }
        lines.add(line.toString());
        return this;
    }

    private void checkBlocks(int blockSize, long diskOffset, long length) {
        if (blockSize <= 0 || blockSize % SECTOR != 0 || length <= 0 || length % blockSize != 0
                || diskOffset % SECTOR != 0) {
            throw new IllegalArgumentException("O_DIRECT needs sector-aligned offsets and whole blocks: bs="
                    + blockSize + " offset=" + diskOffset + " length=" + length);
        }
    }

    private void checkRange(long diskOffset, long length, long patternOffset) {
        if (diskOffset < 0 || diskOffset + length > diskSize) {
            throw new IllegalArgumentException("range beyond the disk: " + diskOffset + "+" + length);
        }
        if (patternOffset < 0 || patternOffset + length > TestPattern.SIZE) {
            throw new IllegalArgumentException("range beyond the pattern: " + patternOffset + "+" + length);
        }
    }

    private static void apply(byte[] image, Region r) {
        int off = (int) r.diskOffset();
        int len = (int) r.length();
        if (r.isZeros()) {
            java.util.Arrays.fill(image, off, off + len, (byte) 0);
        } else {
            System.arraycopy(TestPattern.bytes(), (int) r.patternOffset(), image, off, len);
        }
    }
}
