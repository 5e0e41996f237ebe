package io.vhostblk.qemutests;

import java.util.List;

/**
 * The guest scenarios. Each plan is one boot (about ten seconds under TCG), so related scenarios
 * share a boot; the offsets are chosen to straddle page and block boundaries.
 */
final class GuestPlans {
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long DISK_SIZE = 64 * MIB;

    /** Single queue: direct I/O from 512 B to 1 MiB blocks, FLUSH, DISCARD and WRITE_ZEROES. */
    static final GuestPlan READ_WRITE = readWrite();
    /** Two vCPUs, two queues, parallel pinned writers. */
    static final GuestPlan MULTI_QUEUE = multiQueue();
    /** A read-only export: reads work, writes and discards are refused, the image stays as it was. */
    static final GuestPlan READ_ONLY = readOnly();

    private GuestPlans() {
    }

    /** Every plan; all go into the one initramfs. */
    static List<GuestPlan> all() {
        return List.of(READ_WRITE, MULTI_QUEUE, READ_ONLY);
    }

    private static GuestPlan readWrite() {
        GuestPlan p = GuestPlan.writable("rw", DISK_SIZE, 1, 1)
                .sysfs("writable", "ro", "eq", "0")
                // FLUSH is only sent when the device has a volatile write cache (VIRTIO_BLK_F_FLUSH).
                .writeBack("write-back-cache")
                .sysfs("discard-enabled", "queue/discard_max_bytes", "gt", "0")
                .sysfs("write-zeroes-enabled", "queue/write_zeroes_max_bytes", "gt", "0")
                // Never-written space must read back as zeros.
                .readZeros("unwritten-reads-zeros", (int) MIB, 40 * MIB, 2 * MIB);

        // Direct I/O across block sizes; offsets not page aligned except where noted; reads use a
        // different block size than the write so request shapes differ in each direction.
        p.write("dio-512", 512, MIB + 512, 32 * KIB, 0)
                .read("dio-512-read", (int) (32 * KIB), MIB + 512, 32 * KIB, 0);
        p.write("dio-4k", 4096, 2 * MIB + 1536, 256 * KIB, 100_000)
                .read("dio-4k-read", 4096, 2 * MIB + 1536, 256 * KIB, 100_000);
        p.write("dio-64k", (int) (64 * KIB), 4 * MIB + 3584, 2 * MIB, MIB + 7)
                .read("dio-64k-read", (int) MIB, 4 * MIB + 3584, 2 * MIB, MIB + 7);
        // Overwrite the middle of the previous region across one of its 64 KiB block boundaries.
        p.write("dio-overwrite", 512, 4 * MIB + 3584 + 64 * KIB - 1024, 4 * KIB, 6 * MIB)
                .read("dio-overwrite-read", (int) (4 * KIB), 4 * MIB + 3584 + 64 * KIB - 1024, 4 * KIB, 6 * MIB);
        p.write("dio-1m-aligned", (int) MIB, 8 * MIB, 4 * MIB, 3 * MIB)
                .read("dio-1m-aligned-read", (int) (64 * KIB), 8 * MIB, 4 * MIB, 3 * MIB);
        p.write("dio-1m", (int) MIB, 13 * MIB + 512, 2 * MIB, 5 * MIB + 13)
                .read("dio-1m-read", 512, 13 * MIB + 512, 2 * MIB, 5 * MIB + 13);
        // The last blocks of the disk: capacity and bounds checks must not be off by one.
        p.write("dio-end-of-disk", (int) (128 * KIB), DISK_SIZE - 128 * KIB, 128 * KIB, 7 * MIB)
                .read("dio-end-of-disk-read", 4096, DISK_SIZE - 128 * KIB, 128 * KIB, 7 * MIB);

        // FLUSH: buffered write + fsync; the host inspects the image while the guest waits.
        p.flushedWrite("flush", (int) (64 * KIB), 24 * MIB, MIB, 2 * MIB + 11)
                .read("flush-read", (int) (64 * KIB), 24 * MIB, MIB, 2 * MIB + 11);

        // DISCARD and WRITE_ZEROES (without and with the unmap flag) inside a written 4 MiB region;
        // the untouched pieces between them must survive.
        long base = 28 * MIB;
        long pat = 3 * MIB + 3;
        long zeroStart = 30 * MIB + 1536;
        long zeroEnd = zeroStart + 512 * KIB + 1024;
        long punchStart = 31 * MIB;
        long punchEnd = punchStart + 256 * KIB + 512;
        p.write("trim-region", (int) MIB, base, 4 * MIB, pat)
                .discard("discard", 29 * MIB, MIB)
                .zeroOut("write-zeroes", zeroStart, zeroEnd - zeroStart)
                .punchHole("write-zeroes-unmap", punchStart, punchEnd - punchStart)
                .readZeros("discard-reads-zeros", (int) (64 * KIB), 29 * MIB, MIB)
                .readZeros("write-zeroes-reads-zeros", 512, zeroStart, zeroEnd - zeroStart)
                .readZeros("write-zeroes-unmap-reads-zeros", 512, punchStart, punchEnd - punchStart)
                .read("before-discard-intact", (int) (64 * KIB), base, MIB, pat)
                .read("between-discard-and-zeroes-intact", 512, 30 * MIB, zeroStart - 30 * MIB, pat + 2 * MIB)
                .read("between-zeroes-intact", 512, zeroEnd, punchStart - zeroEnd, pat + (zeroEnd - base))
                .read("after-zeroes-intact", 512, punchEnd, 32 * MIB - punchEnd, pat + (punchEnd - base));
        return p.fsync("final-fsync");
    }

    private static GuestPlan multiQueue() {
        return GuestPlan.writable("mq", DISK_SIZE, 2, 2)
                .hardwareQueues("two-hardware-queues", 2)
                .writeBack("write-back-cache")
                .backgroundWrite("writer-cpu0-64k", 0, (int) (64 * KIB), MIB, 6 * MIB, 0)
                .backgroundWrite("writer-cpu1-128k", 1, (int) (128 * KIB), 9 * MIB + 512, 6 * MIB, MIB + 512)
                .backgroundWrite("writer-cpu0-4k", 0, 4096, 17 * MIB + 3584, 2 * MIB, 5 * MIB)
                .backgroundWrite("writer-cpu1-1m", 1, (int) MIB, 21 * MIB, 6 * MIB, MIB + 333)
                .waitWriters("parallel-writers")
                .read("writer-cpu0-64k-read", (int) MIB, MIB, 6 * MIB, 0)
                .read("writer-cpu1-128k-read", (int) (64 * KIB), 9 * MIB + 512, 6 * MIB, MIB + 512)
                .read("writer-cpu0-4k-read", (int) (32 * KIB), 17 * MIB + 3584, 2 * MIB, 5 * MIB)
                .read("writer-cpu1-1m-read", (int) (128 * KIB), 21 * MIB, 6 * MIB, MIB + 333)
                .queuesUsed("both-queues-used", 2)
                .fsync("final-fsync");
    }

    private static GuestPlan readOnly() {
        return GuestPlan.readOnly("ro", DISK_SIZE)
                .prefill(0, 8 * MIB, 0)
                .prefill(40 * MIB, MIB, MIB + 1)
                .sysfs("read-only", "ro", "eq", "1")
                .read("read-prefilled", (int) (64 * KIB), 0, 8 * MIB, 0)
                .read("read-prefilled-unaligned", 4096, 40 * MIB, MIB, MIB + 1)
                .writeRefused("write-refused", 4096, 4096)
                .discardRefused("discard-refused", MIB, MIB)
                .read("unchanged-after-refusals", 512, 0, 2 * MIB, 0);
    }
}
