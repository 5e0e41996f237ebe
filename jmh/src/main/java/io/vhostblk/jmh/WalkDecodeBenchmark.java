package io.vhostblk.jmh;

import io.vhostblk.virtio.BlkRequest;
import io.vhostblk.virtio.BlkRequestDecoder;
import io.vhostblk.virtio.DescriptorChain;
import io.vhostblk.virtio.DescriptorException;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.PackedRingDriver;
import io.vhostblk.virtio.RingDriver;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.VirtioException;
import io.vhostblk.virtio.Virtqueue;
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
 * Device side of one request: walk a header/data/status chain of three descriptors and decode it
 * as virtio-blk, on a split or a packed ring.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class WalkDecodeBenchmark {
    private static final int QUEUE_SIZE = 256;

    /** Ring format the chain sits on. */
    @Param({"split", "packed"})
    public String ring;

    private GuestRam ram;
    private Virtqueue queue;
    private DescriptorChain chain;
    private BlkRequest request;
    private int head;
    private long features;

    @Setup(Level.Trial)
    public void setUp() throws VirtioException {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
        long header = ram.alloc(VirtioBlk.HEADER_BYTES, 16);
        long data = ram.alloc(4096, 4096);
        long status = ram.alloc(1, 1);
        ram.at(header, VirtioBlk.HEADER_BYTES).set(SplitRingDriver.U32, 0, VirtioBlk.T_IN);
        ram.at(header, VirtioBlk.HEADER_BYTES).set(SplitRingDriver.U64, 8, 2048);
        Buf[] bufs = {Buf.readable(header, VirtioBlk.HEADER_BYTES), Buf.writable(data, 4096), Buf.writable(status, 1)};
        RingDriver driver = ring.equals("packed") ? new PackedRingDriver(ram, QUEUE_SIZE) : new SplitRingDriver(ram, QUEUE_SIZE);
        queue = driver.deviceQueue(true, true); // starts at the driver's avail position: before the chain
        driver.addChain(bufs);
        driver.publish();
        // In flight from here on: a packed ring walks only what it handed out.
        head = queue.popAvail();
        chain = new DescriptorChain(DescriptorChain.capacityFor(QUEUE_SIZE));
        request = new BlkRequest(chain.capacity());
        features = VirtioBlk.bit(VirtioBlk.F_VERSION_1) | VirtioBlk.bit(VirtioBlk.F_FLUSH);
        walkAndDecode();
        if (request.type() != VirtioBlk.T_IN || request.sector() != 2048 || request.dataLength() != 4096) {
            throw new IllegalStateException("the chain did not decode as a 4 KiB read: " + request);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ram.close();
    }

    /** Returns the decoded type so the work cannot be optimised away. */
    @Benchmark
    public int walkAndDecode() throws DescriptorException {
        queue.walk(head, chain);
        BlkRequestDecoder.decode(chain, request, features);
        return request.type() + (int) request.sector();
    }
}
