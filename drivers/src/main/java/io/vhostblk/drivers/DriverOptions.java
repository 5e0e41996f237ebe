package io.vhostblk.drivers;

/**
 * Tuning shared by the drivers a {@link Drivers#open factory} call can produce.
 *
 * @param direct            open files and block devices with {@code O_DIRECT} (io_uring driver),
 *                          bypassing the host page cache as qemu's {@code cache=none} does
 * @param ringEntries       io_uring submission-queue entries per queue (a power of two, at most 32768)
 * @param completionEntries io_uring completion-queue entries per queue; raised to at least twice
 *                          {@code ringEntries}, and the most requests the ring keeps in the kernel at once
 * @param readZeroes        null driver: reads fill the buffer with zeros (a correct device) instead
 *                          of leaving guest memory untouched (fastest, for benchmarking only)
 * @param rbd               rbd driver: how to reach the Ceph cluster
 * @param submitBatch       io_uring driver: hand SQEs to the kernel as soon as this many are filled,
 *                          instead of once per batch of guest requests; 0 = once per batch. More than
 *                          2 per {@code io_uring_enter} makes the kernel plug the block queue until the
 *                          last one is built, so the disk idles meanwhile and then gets a burst
 *                          (docs/benchmarks.md, "Why the O_DIRECT path lost to qsd")
 */
public record DriverOptions(boolean direct, int ringEntries, int completionEntries, boolean readZeroes, RbdClient rbd,
                            int submitBatch) {
    /** SQEs per io_uring_enter by default: the most the kernel submits without plugging the block queue. */
    public static final int DEFAULT_SUBMIT_BATCH = 2;

    /** O_DIRECT, 128 SQ entries, 1024 CQ entries (a whole typical virtqueue in flight), null reads untouched, librados defaults, 2 SQEs per enter. */
    public static final DriverOptions DEFAULTS = new DriverOptions(true, 128, 1024, false, RbdClient.DEFAULTS, DEFAULT_SUBMIT_BATCH);

    public DriverOptions {
        if (ringEntries < 1 || ringEntries > 32768) {
            throw new IllegalArgumentException("io_uring ring entries must be 1..32768, not " + ringEntries);
        }
        if (completionEntries < 1 || completionEntries > 65536) {
            throw new IllegalArgumentException("io_uring completion entries must be 1..65536, not " + completionEntries);
        }
        if (submitBatch < 0 || submitBatch > 32768) {
            throw new IllegalArgumentException("io_uring submit batch must be 0..32768, not " + submitBatch);
        }
        if (rbd == null) {
            throw new IllegalArgumentException("rbd client settings are required (RbdClient.DEFAULTS)");
        }
        completionEntries = Math.min(65536, Math.max(completionEntries, 2 * ringEntries));
    }

    public DriverOptions withDirect(boolean value) {
        return new DriverOptions(value, ringEntries, completionEntries, readZeroes, rbd, submitBatch);
    }

    public DriverOptions withRing(int sqEntries, int cqEntries) {
        return new DriverOptions(direct, sqEntries, cqEntries, readZeroes, rbd, submitBatch);
    }

    public DriverOptions withRbd(RbdClient value) {
        return new DriverOptions(direct, ringEntries, completionEntries, readZeroes, value, submitBatch);
    }

    public DriverOptions withReadZeroes(boolean value) {
        return new DriverOptions(direct, ringEntries, completionEntries, value, rbd, submitBatch);
    }

    public DriverOptions withSubmitBatch(int value) {
        return new DriverOptions(direct, ringEntries, completionEntries, readZeroes, rbd, value);
    }
}
