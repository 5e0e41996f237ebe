package io.vhostblk.jmh;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.compat.VirtioBlkHandler;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.NullDriver;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.virtio.DescriptorException;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;
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

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One guest request through the compat-lib (walk, decode, checks, ① hooks, null driver, ② hooks,
 * status byte, used element) with 0, 1 or 3 pass-through modules. The 0-module case pays one
 * volatile read and a null test for the hooks; the difference to 1 module is what a module's
 * presence costs before it does any work.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class HookChainBenchmark {
    private static final int QUEUE_SIZE = 256;

    @Param({"0", "1", "3"})
    public int modules;

    /** How each module sends the request on: {@code pass} (PASS), or {@code child} (a child request, as crypt and zero-detect do). */
    @Param({"pass", "child"})
    public String via;

    private GuestRam ram;
    private SplitVirtqueue queue;
    private VirtioBlkHandler context;
    private NullDriver driver;
    private int head;
    private int usedLength;

    /** A module that passes every request on and counts nothing: the bare cost of being in the chain. */
    private static final class PassThrough implements ModuleInstance, BlockHook {
        @Override
        public BlockHook openQueue(HookContext context) {
            return this;
        }

        @Override
        public HookAction beforeDriver(BlockRequest request) {
            return HookAction.PASS;
        }
    }

    /** A module that sends every request below as a child request and completes the parent with its result. */
    private static final class ChildForwarder implements ModuleInstance {
        @Override
        public BlockHook openQueue(HookContext context) {
            DriverCompletion done = (child, result) -> context.complete(child.parent(), result);
            return r -> {
                BlockRequest child = context.child(r).set(r.op(), r.offset(), r.length(), r.data(), r.unmap());
                context.submitBelow(child, done);
                return HookAction.TAKE_OVER;
            };
        }
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
        SplitRingDriver ring = new SplitRingDriver(ram, QUEUE_SIZE);
        long header = ram.alloc(VirtioBlk.HEADER_BYTES, 16);
        long data = ram.alloc(4096, 4096);
        long status = ram.alloc(1, 1);
        ram.at(header, VirtioBlk.HEADER_BYTES).set(SplitRingDriver.U32, 0, VirtioBlk.T_IN);
        ram.at(header, VirtioBlk.HEADER_BYTES).set(SplitRingDriver.U64, 8, 2048);
        head = ring.addChain(Buf.readable(header, VirtioBlk.HEADER_BYTES), Buf.writable(data, 4096),
                Buf.writable(status, 1));
        ring.publish();
        queue = ring.deviceQueue(true, true);
        driver = NullDriver.create(1L << 30, false);
        BlockDevice device = new BlockDevice("bench", "jmh", driver, true);
        List<ChainEntry> entries = new ArrayList<>();
        for (int i = 0; i < modules; i++) {
            entries.add(new ChainEntry(via + i, "1", via.equals("child") ? new ChildForwarder() : new PassThrough()));
        }
        device.hooks(new HookChain(entries));
        context = new VirtioBlkHandler(device, 0, QUEUE_SIZE, 2 * QUEUE_SIZE, (h, len) -> usedLength = len);
        request();
        if (usedLength != 4097) {
            throw new IllegalStateException("the read did not complete with 4096 bytes + status: " + usedLength);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        context.close();
        driver.close();
        ram.close();
    }

    /** Returns the used length so the work cannot be optimised away. */
    @Benchmark
    public int request() throws DescriptorException {
        queue.walk(head, context.chainFor(head));
        context.submit(head);
        return usedLength;
    }
}
