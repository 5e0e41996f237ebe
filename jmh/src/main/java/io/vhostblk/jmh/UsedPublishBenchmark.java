package io.vhostblk.jmh;

import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioException;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.concurrent.TimeUnit;

/**
 * Completing requests to the guest: {@code batch} used elements pushed, then one release-publish
 * of used.idx with the EVENT_IDX interrupt decision. One operation is one batch.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class UsedPublishBenchmark {
    private static final int QUEUE_SIZE = 256;

    @Param({"1", "32"})
    public int batch;

    private GuestRam ram;
    private SplitVirtqueue queue;
    private int head;

    @Setup(Level.Trial)
    public void setUp() throws VirtioException {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
        SplitRingDriver driver = new SplitRingDriver(ram, QUEUE_SIZE);
        // The driver asks for an interrupt on every completion, the costliest EVENT_IDX case.
        driver.setUsedEvent(0);
        queue = driver.deviceQueue(true, false);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ram.close();
    }

    /** Returns whether an interrupt is due, so the decision is not optimised away. */
    @Benchmark
    public boolean pushAndPublish() {
        for (int i = 0; i < batch; i++) {
            queue.pushUsed(head, 4097);
            head = (head + 3) & (QUEUE_SIZE - 1);
        }
        return queue.publishUsed();
    }
}
