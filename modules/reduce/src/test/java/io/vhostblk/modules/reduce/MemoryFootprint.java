package io.vhostblk.modules.reduce;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Measures what an open volume holds in memory (heap after GC, and the native buffers it allocates), for
 * docs/reduce.md. Not a test: run by hand, see the doc for the command. Argument: logical size in GiB.
 */
public final class MemoryFootprint {

    private MemoryFootprint() {
    }

    public static void main(String[] args) throws Exception {
        long gib = Long.parseLong(args[0]);
        Path image = Files.createTempFile("reduce-footprint", ".img");
        try {
            ReduceCommand cmd = new ReduceCommand(System.out, System.err);
            if (cmd.run(java.util.List.of("format", image.toString(), "--logical-size", gib + "G", "--force")) != 0) {
                throw new IllegalStateException("format failed");
            }
            long before = heapAfterGc();
            try (FileBackingStore store = FileBackingStore.open(image, false);
                 ReduceVolume v = ReduceVolume.open(store, "footprint", ReduceVolume.Options.both())) {
                long heap = heapAfterGc() - before;
                long logicalBlocks = v.logicalSize() / v.blockSize();
                long dataBlocks = (v.physicalBytesFree() + v.physicalBytesUsed()) / v.blockSize();
                // Native while serving: 4 buffers per block op (64) plus the zero block; see ReduceVolume's fields.
                // The checkpoint image (8 B per logical + 4 B per data block, plus a header block) exists only
                // while a checkpoint is written, and is printed apart.
                long checkpointBytes = (1 + Superblock.ceilDiv(logicalBlocks * 8 + dataBlocks * 4, v.blockSize())) * v.blockSize();
                long nativeBytes = (64L * 4 + 1) * v.blockSize();
                System.out.printf("logical %d GiB (%d blocks), data area %d blocks%n", gib, logicalBlocks, dataBlocks);
                System.out.printf("heap %d MiB, native %d MiB, total %.2f GiB per TiB logical (data area = logical); "
                                + "while a checkpoint is written, %d MiB more (%.2f GiB per TiB)%n",
                        heap >> 20, nativeBytes >> 20, (heap + nativeBytes) * 1024.0 / gib / (1L << 30),
                        checkpointBytes >> 20, checkpointBytes * 1024.0 / gib / (1L << 30));
            }
        } finally {
            Files.deleteIfExists(image);
        }
    }

    private static long heapAfterGc() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
