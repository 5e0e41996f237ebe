package io.vhostblk.qemutests;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * What every guest test class shares, registered as a static {@code @RegisterExtension} field: before
 * the class it takes the run lock on {@code target/}, finds QEMU and the guest kernel and builds an
 * initramfs holding the class's plans; after the class it releases the lock. In between it hands out
 * fresh run directories and boots plans against a vhost-user socket.
 */
final class GuestHarness implements BeforeAllCallback, AfterAllCallback {
    static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final Duration LOCK_TIMEOUT = Duration.ofMinutes(10);

    private final String initramfsDir;
    private final Duration timeout;
    private final Supplier<List<GuestPlan>> plans;
    private RunLock runLock;
    private GuestKernel kernel;
    private Path initramfs;

    /**
     * @param initramfsDir the class's own directory under {@code target/} for its initramfs
     *                     ({@link Initramfs#build} deletes other archives in the one it is given)
     * @param timeout      how long one guest may run before QEMU is killed
     * @param plans        the plans the guests of the class run; asked for only before the class, so a
     *                     class's plan constants may be declared after the harness
     */
    GuestHarness(String initramfsDir, Duration timeout, Supplier<List<GuestPlan>> plans) {
        this.initramfsDir = initramfsDir;
        this.timeout = timeout;
        this.plans = plans;
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), LOCK_TIMEOUT);
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        initramfs = Initramfs.build(TARGET.resolve(initramfsDir), kernel, plans.get());
    }

    @Override
    public void afterAll(ExtensionContext context) throws IOException {
        if (runLock != null) {
            runLock.close();
            runLock = null;
        }
    }

    GuestKernel kernel() {
        return kernel;
    }

    Path initramfs() {
        return initramfs;
    }

    /** An empty run directory {@code target/qemu-runs/NAME} for one test's images, logs and consoles. */
    static Path runDir(String name) throws IOException {
        return TestDirs.fresh(TARGET.resolve("qemu-runs").resolve(name));
    }

    /** What QEMU boots to run {@code plan} on the vhost-user {@code socket}, with the class's timeout. */
    QemuGuest.Config config(GuestPlan plan, Path socket, Path runDir, QemuGuest.Ring ring) {
        return new QemuGuest.Config(kernel, initramfs, plan, socket, runDir, timeout, ring);
    }

    /** Boots {@code plan} on split rings and waits until the guest powers off (or is killed at the timeout). */
    GuestRun boot(GuestPlan plan, Path socket, Path runDir, QemuGuest.SyncedCheck synced)
            throws IOException, InterruptedException {
        return boot(plan, socket, runDir, QemuGuest.Ring.SPLIT, synced);
    }

    /** As {@link #boot(GuestPlan, Path, Path, QemuGuest.SyncedCheck)}, on the given ring layout. */
    GuestRun boot(GuestPlan plan, Path socket, Path runDir, QemuGuest.Ring ring, QemuGuest.SyncedCheck synced)
            throws IOException, InterruptedException {
        return QemuGuest.run(config(plan, socket, runDir, ring), synced);
    }
}
