package io.vhostblk.qemutests;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The cache mode a guest sees from each back-end's defaults, because it decides what a guest's
 * fsync costs (docs/benchmarks.md, "Guest write+fsync"): qemu-storage-daemon's vhost-user-blk
 * export advertises a write-through cache (config {@code writeback} = 0), so the guest's block
 * layer sends no FLUSH and each write is made durable inside the back-end; vhost-blk advertises
 * a write-back cache, so every fsync costs the guest a FLUSH round trip. Guest comparisons of
 * fsync-heavy loads must put both in the same mode. Each boot also runs write+fsync pairs in both
 * modes and checks the FLUSH count the guest's block layer reports; the elapsed times it prints are
 * for docs/benchmarks.md, never compared here.
 */
class CacheModeGuestTest {
    private static final long DISK_SIZE = 8L << 20;

    /** Write+fsync pairs per mode: enough for the reported time to mean something, short under TCG. */
    private static final int PAIRS = 100;

    /**
     * The guest's view of each back-end's default (/sys/block/vda/queue/write_cache), then the same
     * for both: write+fsync pairs in the default mode (also a warm-up), then in write-through and in
     * write-back mode: a FLUSH per fsync in write-back mode, none in write-through.
     */
    static final GuestPlan WRITE_BACK = syncPairs(GuestPlan.writable("cache-wb", DISK_SIZE, 1, 1)
            .sysfs("write-back-by-default", "queue/write_cache", "eq", "write_back"));
    static final GuestPlan WRITE_THROUGH = syncPairs(GuestPlan.writable("cache-wt", DISK_SIZE, 1, 1)
            .sysfs("write-through-by-default", "queue/write_cache", "eq", "write_through"));

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-cache-mode", Duration.ofSeconds(180),
            () -> List.of(WRITE_BACK, WRITE_THROUGH));

    private static GuestPlan syncPairs(GuestPlan p) {
        return p.syncLoop("fsync-pairs-default-mode", PAIRS, 0)
                .cacheMode("switch-to-write-through", false)
                .syncLoop("fsync-pairs-write-through", PAIRS, 0)
                .cacheMode("switch-to-write-back", true)
                .syncLoop("fsync-pairs-write-back", PAIRS, 0);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Backend.class)
    void theGuestSeesTheBackEndsDefaultCacheMode(Backend backend) throws Exception {
        GuestPlan plan = backend == Backend.QSD ? WRITE_THROUGH : WRITE_BACK;
        Path runDir = GuestHarness.runDir(plan.name() + "-" + backend.name().toLowerCase());
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, plan);
        try (SocketDir sockets = SocketDir.create("vbc-")) {
            ExportSpec spec = new ExportSpec(image, plan.diskSize(), plan.queues(), false,
                    sockets.resolve("blk.sock"), runDir.resolve("backend.log"));
            try (StorageBackend server = backend.start(spec)) {
                GuestRun run = HARNESS.boot(plan, spec.socket(), runDir, QemuGuest.NO_HOST_STEPS);
                Problems problems = new Problems();
                problems.guest("", run, plan);
                problems.failIfAny("plan '" + plan.name() + "' against " + server.name(), () -> Problems.tails(run, 20, server));
            }
        }
    }
}
