package io.vhostblk.compat;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.RamDriver;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.VirtioBlk;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static io.vhostblk.virtio.SplitRingDriver.U32;
import static io.vhostblk.virtio.SplitRingDriver.U64;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Guest requests through the compat-lib to a RAM driver: each virtio-blk outcome, checked in guest memory. */
class VirtioBlkHandlerTest {
    private static final long DISK = 1 << 20;

    private GuestRam ram;
    private SplitRingDriver ring;
    private SplitVirtqueue queue;
    private VirtioBlkHandler context;
    private BlockDriver driver;
    private final List<int[]> used = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 4 << 20));
        ring = new SplitRingDriver(ram, 128);
        queue = ring.deviceQueue(false, true);
        driver = RamDriver.create(DISK);
        open(false);
    }

    private void open(boolean readOnlyDevice) throws Exception {
        open(readOnlyDevice ? new ReadOnly(driver) : driver, true);
    }

    private void open(BlockDriver d, boolean writeback) throws Exception {
        BlockDevice device = new BlockDevice("disk0", "vm1", d, writeback);
        context = new VirtioBlkHandler(device, 0, 128, 256, (head, len) -> used.add(new int[]{head, len}));
    }

    @AfterEach
    void tearDown() {
        context.close();
        driver.close();
        ram.close();
    }

    /** A request as a Linux guest builds it: header, optional data, status byte; returns the status gpa. */
    private long request(int type, long sector, long dataGpa, int dataLen, boolean dataWritable) throws Exception {
        long hdr = ram.alloc(16, 16);
        MemorySegment h = ram.at(hdr, 16);
        h.set(U32, 0, type);
        h.set(U32, 4, 0);
        h.set(U64, 8, sector);
        long status = ram.alloc(1, 1);
        ram.at(status, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 0x7f);
        List<Buf> bufs = new ArrayList<>();
        bufs.add(Buf.readable(hdr, 16));
        if (dataLen > 0) {
            bufs.add(dataWritable ? Buf.writable(dataGpa, dataLen) : Buf.readable(dataGpa, dataLen));
        }
        bufs.add(Buf.writable(status, 1));
        serve(bufs.toArray(Buf[]::new));
        return status;
    }

    /** Offers one chain, walks and serves it to the end. */
    private void serve(Buf... chain) throws Exception {
        ring.addChain(chain);
        ring.publish();
        int head = queue.popAvail();
        queue.walk(head, context.chainFor(head));
        context.submit(head);
        context.flushBatch();
        context.reap();
    }

    private int status(long gpa) {
        return ram.at(gpa, 1).get(ValueLayout.JAVA_BYTE, 0);
    }

    private long buffer(int len, int fill) {
        long gpa = ram.alloc(len, 4096);
        ram.at(gpa, len).fill((byte) fill);
        return gpa;
    }

    @Test
    void writeThenReadReturnsTheDataAndTheWrittenLength() throws Exception {
        long src = buffer(4096, 0x3c);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_OUT, 8, src, 4096, false)));
        assertEquals(1, used.getLast()[1], "a write reports only the status byte as written");
        long dst = buffer(4096, 0);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 8, dst, 4096, true)));
        assertEquals(4097, used.getLast()[1]);
        assertArrayEquals(ram.at(src, 4096).toArray(ValueLayout.JAVA_BYTE), ram.at(dst, 4096).toArray(ValueLayout.JAVA_BYTE));
        assertEquals(0, context.inFlight());
    }

    @Test
    void aShortTransferFromTheDriverIsAnIoErrorNotASuccess() throws Exception {
        context.close();
        io.vhostblk.drivers.FaultyDriver faulty = io.vhostblk.drivers.FaultyDriver.wrap(driver,
                io.vhostblk.drivers.FaultSpec.parse("short=2"), "disk0");
        open(faulty, true);
        long buf = buffer(4096, 0x22);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_OUT, 0, buf, 4096, false)));
        assertEquals(VirtioBlk.S_IOERR, status(request(VirtioBlk.T_OUT, 8, buf, 4096, false)));
        assertEquals(1, used.getLast()[1]);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 0, buf, 4096, true)));
        assertEquals(VirtioBlk.S_IOERR, status(request(VirtioBlk.T_IN, 0, buf, 4096, true)));
        assertEquals(2, faulty.counters().shortTransfers());
        assertEquals(0, context.inFlight());
    }

    @Test
    void requestsBeyondCapacityFailWithIoErrAndTouchNothing() throws Exception {
        long buf = buffer(4096, 0x11);
        long lastSector = DISK / 512;
        assertEquals(VirtioBlk.S_IOERR, status(request(VirtioBlk.T_OUT, lastSector - 4, buf, 4096, false)));
        assertEquals(VirtioBlk.S_IOERR, status(request(VirtioBlk.T_IN, -1L, buf, 512, true)));
        assertEquals(VirtioBlk.S_IOERR, status(request(VirtioBlk.T_IN, Long.MAX_VALUE / 256, buf, 512, true)));
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, lastSector - 8, buf, 4096, true)), "the last 4 KiB is in range");
    }

    @Test
    void unknownTypesAreUnsupportedAndGetIdReturnsTheSerial() throws Exception {
        assertEquals(VirtioBlk.S_UNSUPP, status(request(99, 0, 0, 0, false)));
        long id = buffer(VirtioBlk.ID_BYTES, 0x55);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_GET_ID, 0, id, VirtioBlk.ID_BYTES, true)));
        byte[] serial = ram.at(id, 5).toArray(ValueLayout.JAVA_BYTE);
        assertEquals("disk0", new String(serial, java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(0, ram.at(id + 5, 1).get(ValueLayout.JAVA_BYTE, 0), "the rest of the id is zero-padded");
    }

    @Test
    void getIdTruncatesTheSerialToTheGuestBuffer() throws Exception {
        long id = buffer(8, 0x55);
        long guard = id + 8;
        ram.at(guard, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 0x66);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_GET_ID, 0, id, 8, true)));
        assertEquals(9, used.getLast()[1], "8 id bytes and the status");
        assertEquals("disk0\0\0\0", new String(ram.at(id, 8).toArray(ValueLayout.JAVA_BYTE), java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(0x66, ram.at(guard, 1).get(ValueLayout.JAVA_BYTE, 0), "nothing written past the guest's buffer");
    }

    @Test
    void aRangeSegmentSplitAcrossDescriptorsIsGathered() throws Exception {
        long data = buffer(8192, 0x77);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_OUT, 0, data, 8192, false)));
        long seg = ram.alloc(16, 8);
        MemorySegment s = ram.at(seg, 16);
        s.set(U64, 0, 8L);
        s.set(U32, 8, 8);
        s.set(U32, 12, 0);
        long hdr = ram.alloc(16, 16);
        ram.at(hdr, 16).set(U32, 0, VirtioBlk.T_WRITE_ZEROES);
        long status = ram.alloc(1, 1);
        serve(Buf.readable(hdr, 16), Buf.readable(seg, 5), Buf.readable(seg + 5, 11), Buf.writable(status, 1));
        assertEquals(VirtioBlk.S_OK, status(status));
        long back = buffer(8192, 0x01);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 0, back, 8192, true)));
        byte[] b = ram.at(back, 8192).toArray(ValueLayout.JAVA_BYTE);
        assertEquals(0x77, b[4095] & 0xff);
        assertEquals(0, b[4096], "sectors 8..15 zeroed");
        assertEquals(0, b[8191]);
    }

    @Test
    void requestTypesWhoseFeatureWasNotNegotiatedAreUnsupported() throws Exception {
        context.close();
        BlockDevice device = new BlockDevice("disk0", "vm1", driver, true);
        long withoutRanges = VirtioBlkHandler.offeredFeatures(device)
                & ~VirtioBlk.bit(VirtioBlk.F_DISCARD) & ~VirtioBlk.bit(VirtioBlk.F_WRITE_ZEROES);
        context = new VirtioBlkHandler(device, 0, 128, 256, withoutRanges, (head, len) -> used.add(new int[]{head, len}));
        long data = buffer(4096, 0x77);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_OUT, 0, data, 4096, false)));
        long seg = ram.alloc(16, 8);
        ram.at(seg, 16).set(U32, 8, 8);
        assertEquals(VirtioBlk.S_UNSUPP, status(request(VirtioBlk.T_WRITE_ZEROES, 0, seg, 16, false)));
        assertEquals(VirtioBlk.S_UNSUPP, status(request(VirtioBlk.T_DISCARD, 0, seg, 16, false)));
        long back = buffer(4096, 0);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 0, back, 4096, true)));
        assertEquals(0x77, ram.at(back, 1).get(ValueLayout.JAVA_BYTE, 0) & 0xff, "nothing was zeroed");
    }

    @Test
    void discardWithTheUnmapFlagIsUnsupportedAndWriteZeroesZeroes() throws Exception {
        long data = buffer(8192, 0x77);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_OUT, 0, data, 8192, false)));
        long seg = ram.alloc(16, 8);
        MemorySegment s = ram.at(seg, 16);
        s.set(U64, 0, 0L);
        s.set(U32, 8, 8);
        s.set(U32, 12, VirtioBlk.RANGE_FLAG_UNMAP);
        assertEquals(VirtioBlk.S_UNSUPP, status(request(VirtioBlk.T_DISCARD, 0, seg, 16, false)));
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_WRITE_ZEROES, 0, seg, 16, false)));
        long back = buffer(8192, 0x01);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 0, back, 8192, true)));
        byte[] b = ram.at(back, 8192).toArray(ValueLayout.JAVA_BYTE);
        for (int i = 0; i < 8192; i++) {
            assertEquals(i < 4096 ? 0 : 0x77, b[i] & 0xff, "byte " + i);
        }
        s.set(U32, 12, 0x80);
        assertEquals(VirtioBlk.S_UNSUPP, status(request(VirtioBlk.T_WRITE_ZEROES, 0, seg, 16, false)), "reserved flag bits");
    }

    @Test
    void readOnlyDeviceRefusesWritesAndDiscardsButServesReads() throws Exception {
        context.close();
        open(true);
        long buf = buffer(512, 0x42);
        assertEquals(VirtioBlk.S_IOERR, status(request(VirtioBlk.T_OUT, 0, buf, 512, false)));
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 0, buf, 512, true)));
        assertEquals(0, ram.at(buf, 1).get(ValueLayout.JAVA_BYTE, 0), "nothing was written before");
    }

    @Test
    void aChainWithoutStatusByteIsReturnedWithNothingWritten() throws Exception {
        long hdr = ram.alloc(16, 16);
        ram.at(hdr, 16).set(U32, 0, VirtioBlk.T_FLUSH);
        ring.addChain(Buf.readable(hdr, 16));
        ring.publish();
        int head = queue.popAvail();
        queue.walk(head, context.chainFor(head));
        context.submit(head);
        assertEquals(head, used.getLast()[0]);
        assertEquals(0, used.getLast()[1]);
        assertFalse(context.busy(head));
    }

    @Test
    void writeThroughCacheFlushesEveryWriteBeforeAcknowledgingIt() throws Exception {
        context.close();
        List<BlockOp> ops = new ArrayList<>();
        open(new Recording(driver, ops), false);
        long buf = buffer(4096, 0x21);
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_OUT, 0, buf, 4096, false)));
        assertEquals(List.of(BlockOp.WRITE, BlockOp.FLUSH), ops);
        assertEquals(1, used.size(), "acknowledged once, after the flush");
        ops.clear();
        assertEquals(VirtioBlk.S_OK, status(request(VirtioBlk.T_IN, 0, buf, 4096, true)));
        assertEquals(List.of(BlockOp.READ), ops, "reads are not flushed");
    }

    /** Records the ops that reach the driver. */
    private record Recording(BlockDriver inner, List<BlockOp> ops) implements BlockDriver {
        public String kind() { return inner.kind(); }
        public String target() { return inner.target(); }
        public long capacity() { return inner.capacity(); }
        public boolean readOnly() { return false; }
        public boolean supportsDiscard() { return true; }
        public boolean supportsWriteZeroes() { return true; }
        public io.vhostblk.drivers.DriverQueue openQueue(int q, io.vhostblk.drivers.DriverCompletion c)
                throws io.vhostblk.drivers.DriverException {
            io.vhostblk.drivers.DriverQueue dq = inner.openQueue(q, c);
            return new io.vhostblk.drivers.DriverQueue() {
                public void submit(io.vhostblk.drivers.BlockRequest r) { ops.add(r.op()); dq.submit(r); }
                public void flushBatch() { dq.flushBatch(); }
                public int reap() { return dq.reap(); }
                public int completionFd() { return dq.completionFd(); }
                public int inFlight() { return dq.inFlight(); }
                public void close() { dq.close(); }
            };
        }
        public void sync() throws io.vhostblk.drivers.DriverException { inner.sync(); }
        public void close() { }
    }

    /** The same driver, exported read-only. */
    private record ReadOnly(BlockDriver inner) implements BlockDriver {
        public String kind() { return inner.kind(); }
        public String target() { return inner.target(); }
        public long capacity() { return inner.capacity(); }
        public boolean readOnly() { return true; }
        public boolean supportsDiscard() { return false; }
        public boolean supportsWriteZeroes() { return false; }
        public io.vhostblk.drivers.DriverQueue openQueue(int q, io.vhostblk.drivers.DriverCompletion c)
                throws io.vhostblk.drivers.DriverException { return inner.openQueue(q, c); }
        public void sync() throws io.vhostblk.drivers.DriverException { inner.sync(); }
        public void close() { }
    }
}
