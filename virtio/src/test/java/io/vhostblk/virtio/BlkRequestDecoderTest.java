package io.vhostblk.virtio;

import io.vhostblk.virtio.BlkRequest.Outcome;
import io.vhostblk.virtio.SplitRingDriver.Buf;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BlkRequestDecoderTest {
    private static final long MB = 1 << 20;
    private static final int SIZE = 16;
    private static final long ALL_FEATURES = VirtioBlk.bit(VirtioBlk.F_DISCARD) | VirtioBlk.bit(VirtioBlk.F_WRITE_ZEROES)
            | VirtioBlk.bit(VirtioBlk.F_SECURE_ERASE) | VirtioBlk.bit(VirtioBlk.F_LIFETIME) | VirtioBlk.bit(VirtioBlk.F_FLUSH);

    private GuestRam ram;
    private SplitRingDriver driver;
    private SplitVirtqueue queue;
    private DescriptorChain chain;
    private BlkRequest req;

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 4 * MB));
        driver = new SplitRingDriver(ram, SIZE);
        queue = driver.deviceQueue(true, true);
        chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
        req = new BlkRequest(chain.capacity());
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    private long header(int type, long sector) {
        long h = ram.alloc(16, 8);
        MemorySegment s = ram.at(h, 16);
        s.set(SplitRingDriver.U32, 0, type);
        s.set(SplitRingDriver.U32, 4, 0);
        s.set(SplitRingDriver.U64, 8, sector);
        return h;
    }

    private long status() {
        long st = ram.alloc(1, 1);
        ram.at(st, 1).set(ValueLayout.JAVA_BYTE, 0, (byte) 0x7f);
        return st;
    }

    private Outcome submit(long features, Buf... bufs) throws VirtioException {
        driver.addChain(bufs);
        driver.publish();
        int head = queue.popAvail();
        queue.walk(head, chain);
        // Recycle the descriptors at once: the walked chain already holds everything decode needs.
        queue.pushUsed(head, 0);
        queue.publishUsed();
        assertEquals(head, driver.reapUsed());
        int status = BlkRequestDecoder.decode(chain, req, features);
        // The int result and the enum agree.
        assertEquals(switch (req.outcome()) {
            case OK -> VirtioBlk.S_OK;
            case IOERR -> VirtioBlk.S_IOERR;
            case UNSUPP -> VirtioBlk.S_UNSUPP;
            case NO_STATUS -> BlkRequestDecoder.NO_STATUS;
        }, status);
        return req.outcome();
    }

    private Outcome submit(Buf... bufs) throws VirtioException {
        return submit(ALL_FEATURES, bufs);
    }

    private void assertIov(int i, long gpa, long len) {
        assertEquals(ram.memory().translate(gpa, len), req.dataRegion(i).address() + req.dataRegionOffset(i));
        assertEquals(len, req.dataSegmentLength(i));
        assertTrue(req.dataRegionOffset(i) + len <= req.dataRegion(i).byteSize(), "inside its region");
    }

    @Test
    void decodesRead() throws Exception {
        long data = ram.alloc(8192, 4096);
        long st = status();
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_IN, 77), 16),
                Buf.writable(data, 4096), Buf.writable(data + 4096, 4096), Buf.writable(st, 1)));
        assertEquals(VirtioBlk.T_IN, req.type());
        assertEquals(77, req.sector());
        assertNull(req.error());
        assertTrue(req.dataWritable());
        assertEquals(8192, req.dataLength());
        assertEquals(2, req.dataSegmentCount());
        assertIov(0, data, 4096);
        assertIov(1, data + 4096, 4096);
        assertEquals(ram.memory().translate(st, 1), req.statusRegion().address() + req.statusOffset());
        req.statusRegion().set(ValueLayout.JAVA_BYTE, req.statusOffset(), VirtioBlk.S_OK);
        assertEquals(0, ram.at(st, 1).get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(8193, req.usedLength(VirtioBlk.S_OK));
        assertEquals(1, req.usedLength(VirtioBlk.S_IOERR));
    }

    @Test
    void decodesReadWithStatusSharingTheLastDataDescriptor() throws Exception {
        long data = ram.alloc(513, 8);
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_IN, 0), 16), Buf.writable(data, 513)));
        assertEquals(512, req.dataLength());
        assertEquals(1, req.dataSegmentCount());
        assertIov(0, data, 512);
        assertEquals(ram.memory().translate(data + 512, 1), req.statusRegion().address() + req.statusOffset());
    }

    @Test
    void decodesWriteWithHeaderSplitAcrossDescriptors() throws Exception {
        long h = header(VirtioBlk.T_OUT, 0x1_0000_0001L);
        long data = ram.alloc(1024, 512);
        long st = status();
        // Header in three pieces, the last piece also carrying the first data bytes.
        long glued = ram.alloc(8 + 512, 8);
        MemorySegment.copy(ram.at(h, 16), 8, ram.at(glued, 8), 0, 8);
        assertEquals(Outcome.OK, submit(Buf.readable(h, 3), Buf.readable(h + 3, 5), Buf.readable(glued, 8 + 512),
                Buf.readable(data, 512), Buf.writable(st, 1)));
        assertEquals(VirtioBlk.T_OUT, req.type());
        assertEquals(0x1_0000_0001L, req.sector());
        assertFalse(req.dataWritable());
        assertEquals(1024, req.dataLength());
        assertEquals(2, req.dataSegmentCount());
        assertIov(0, glued + 8, 512);
        assertIov(1, data, 512);
        assertEquals(1, req.usedLength(VirtioBlk.S_OK));
    }

    @Test
    void decodesFlushAndGetId() throws Exception {
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_FLUSH, 0), 16), Buf.writable(status(), 1)));
        assertEquals(0, req.dataSegmentCount());
        assertEquals(1, req.usedLength(VirtioBlk.S_OK));

        long id = ram.alloc(20, 1);
        ram.at(id, 20).fill((byte) 0x55);
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_GET_ID, 0), 16), Buf.writable(id, 20),
                Buf.writable(status(), 1)));
        // The serial itself is written by the compat-lib through the request's IoVector (VirtioBlkHandlerTest).
        assertTrue(req.dataWritable());
        assertEquals(20, req.dataLength());
        assertIov(0, id, 20);
        assertEquals(21, req.usedLength(VirtioBlk.S_OK));
    }

    @Test
    void getIdTruncatesToTheGuestBuffer() throws Exception {
        long id = ram.alloc(8, 1);
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_GET_ID, 0), 16), Buf.writable(id, 9)));
        assertEquals(8, req.dataLength());
        assertEquals(9, req.usedLength(VirtioBlk.S_OK));
    }

    /** Gathers segment i from the request's data ranges, as the compat-lib does through an IoVector. */
    private void readSegment(int i, DiscardSegment out) {
        MemorySegment wire = MemorySegment.ofArray(new byte[16]);
        long skip = (long) i * VirtioBlk.RANGE_SEGMENT_BYTES;
        long done = 0;
        for (int k = 0; k < req.dataSegmentCount() && done < 16; k++) {
            long len = req.dataSegmentLength(k);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long n = Math.min(len - skip, 16 - done);
            MemorySegment.copy(req.dataRegion(k), req.dataRegionOffset(k) + skip, wire, done, n);
            done += n;
            skip = 0;
        }
        assertEquals(16, done, "segment " + i + " lies inside the data");
        out.read(wire, 0);
    }

    @Test
    void decodesDiscardAndWriteZeroesSegments() throws Exception {
        long segs = ram.alloc(32, 8);
        MemorySegment s = ram.at(segs, 32);
        s.set(SplitRingDriver.U64, 0, 1000);
        s.set(SplitRingDriver.U32, 8, 8);
        s.set(SplitRingDriver.U32, 12, 0);
        s.set(SplitRingDriver.U64, 16, 5000);
        s.set(SplitRingDriver.U32, 24, -1); // 0xffffffff sectors: read as unsigned
        s.set(SplitRingDriver.U32, 28, VirtioBlk.RANGE_FLAG_UNMAP);
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_WRITE_ZEROES, 0), 16), Buf.readable(segs, 32),
                Buf.writable(status(), 1)));
        assertEquals(2, req.dataLength() / VirtioBlk.RANGE_SEGMENT_BYTES);
        DiscardSegment seg = new DiscardSegment();
        readSegment(0, seg);
        assertEquals(1000, seg.sector());
        assertEquals(8, seg.numSectors());
        assertEquals(4096, seg.bytes());
        assertEquals(VirtioBlk.S_OK, seg.flagsStatus(VirtioBlk.T_WRITE_ZEROES));
        readSegment(1, seg);
        assertEquals(5000, seg.sector());
        assertEquals(0xffffffffL, seg.numSectors());
        assertEquals(VirtioBlk.S_OK, seg.flagsStatus(VirtioBlk.T_WRITE_ZEROES));
        assertEquals(VirtioBlk.S_UNSUPP, seg.flagsStatus(VirtioBlk.T_DISCARD), "UNMAP is only defined for write zeroes");

        // A segment split across two descriptors is gathered.
        long a = ram.alloc(16, 8);
        MemorySegment.copy(s, 0, ram.at(a, 16), 0, 16);
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_DISCARD, 0), 16), Buf.readable(a, 5),
                Buf.readable(a + 5, 11), Buf.writable(status(), 1)));
        readSegment(0, seg);
        assertEquals(1000, seg.sector());
        assertEquals(8, seg.numSectors());
        assertEquals(VirtioBlk.S_OK, seg.flagsStatus(VirtioBlk.T_DISCARD));
    }

    @Test
    void noWritableByteMeansNoStatus() throws Exception {
        assertEquals(Outcome.NO_STATUS, submit(Buf.readable(header(VirtioBlk.T_IN, 0), 16)));
        assertFalse(req.hasStatus());
        assertEquals(0, req.usedLength(VirtioBlk.S_IOERR));
        assertEquals(null, req.statusRegion(), "nowhere to write a status");
        // A zero-length writable descriptor does not provide a status byte either.
        assertEquals(Outcome.NO_STATUS, submit(Buf.readable(header(VirtioBlk.T_IN, 0), 16), Buf.writable(status(), 0)));
    }

    @Test
    void shortHeaderIsIoError() throws Exception {
        long st = status();
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_IN, 0), 15), Buf.writable(st, 1)));
        assertEquals("header shorter than 16 bytes", req.error());
        assertEquals(-1, req.type());
        req.statusRegion().set(ValueLayout.JAVA_BYTE, req.statusOffset(), VirtioBlk.S_IOERR);
        assertEquals(VirtioBlk.S_IOERR, ram.at(st, 1).get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(1, req.usedLength(VirtioBlk.S_IOERR));
        assertEquals(Outcome.IOERR, submit(Buf.writable(st, 1)));
    }

    @Test
    void wrongDataDirectionIsIoError() throws Exception {
        long data = ram.alloc(512, 512);
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_IN, 0), 16), Buf.readable(data, 512),
                Buf.writable(status(), 1)));
        assertTrue(req.error().contains("IN request has readable data"));
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_OUT, 0), 16), Buf.writable(data, 512),
                Buf.writable(status(), 1)));
        assertTrue(req.error().contains("OUT request has writable data"));
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_FLUSH, 0), 16), Buf.readable(data, 512),
                Buf.writable(status(), 1)));
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_GET_ID, 0), 16), Buf.readable(data, 20),
                Buf.writable(status(), 1)));
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_DISCARD, 0), 16), Buf.readable(data, 16),
                Buf.writable(data + 16, 16), Buf.writable(status(), 1)));
        assertEquals(0, req.dataSegmentCount(), "a failed request exposes no data");
    }

    @Test
    void lengthNotMultipleOf512IsIoError() throws Exception {
        long data = ram.alloc(1024, 512);
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_IN, 0), 16), Buf.writable(data, 511),
                Buf.writable(status(), 1)));
        assertEquals("data length is not a multiple of 512 bytes", req.error());
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_OUT, 0), 16), Buf.readable(data, 1000),
                Buf.writable(status(), 1)));
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_DISCARD, 0), 16), Buf.readable(data, 24),
                Buf.writable(status(), 1)));
        assertEquals(Outcome.IOERR, submit(Buf.readable(header(VirtioBlk.T_DISCARD, 0), 16), Buf.writable(status(), 1)));
    }

    @Test
    void unknownOrUnnegotiatedTypeIsUnsupported() throws Exception {
        assertEquals(Outcome.UNSUPP, submit(Buf.readable(header(0x1234, 0), 16), Buf.writable(status(), 1)));
        assertEquals("unknown request type", req.error());
        assertEquals(Outcome.UNSUPP, submit(Buf.readable(header(0x80000000, 0), 16), Buf.writable(status(), 1)));
        assertEquals(Outcome.UNSUPP, submit(Buf.readable(header(2, 0), 16), Buf.writable(status(), 1)), "legacy SCSI");
        long segs = ram.alloc(16, 8);
        long plain = 0;
        assertEquals(Outcome.UNSUPP, submit(plain, Buf.readable(header(VirtioBlk.T_DISCARD, 0), 16),
                Buf.readable(segs, 16), Buf.writable(status(), 1)));
        assertEquals(Outcome.UNSUPP, submit(plain, Buf.readable(header(VirtioBlk.T_WRITE_ZEROES, 0), 16),
                Buf.readable(segs, 16), Buf.writable(status(), 1)));
        assertEquals(Outcome.UNSUPP, submit(plain, Buf.readable(header(VirtioBlk.T_SECURE_ERASE, 0), 16),
                Buf.readable(segs, 16), Buf.writable(status(), 1)));
        assertEquals(Outcome.UNSUPP, submit(plain, Buf.readable(header(VirtioBlk.T_GET_LIFETIME, 0), 16),
                Buf.writable(segs, 6), Buf.writable(status(), 1)));
        assertEquals(Outcome.OK, submit(plain, Buf.readable(header(VirtioBlk.T_FLUSH, 0), 16), Buf.writable(status(), 1)),
                "FLUSH is served even without the feature, as QEMU does");
        assertEquals(Outcome.OK, submit(Buf.readable(header(VirtioBlk.T_GET_LIFETIME, 0), 16),
                Buf.writable(segs, 6), Buf.writable(status(), 1)));
        assertEquals(7, req.usedLength(VirtioBlk.S_OK));
        // The two-argument decode admits every known type.
        driver.addChain(Buf.readable(header(VirtioBlk.T_SECURE_ERASE, 0), 16), Buf.readable(segs, 16), Buf.writable(status(), 1));
        driver.publish();
        int head = queue.popAvail();
        queue.walk(head, chain);
        assertEquals(VirtioBlk.S_OK, BlkRequestDecoder.decode(chain, req));
        assertEquals(1, req.dataLength() / VirtioBlk.RANGE_SEGMENT_BYTES);
    }

    @Test
    void splitsDataIntoRangesOfGuestMemory() throws Exception {
        long data = ram.alloc(1024, 512);
        long st = status();
        submit(Buf.readable(header(VirtioBlk.T_IN, 0), 16), Buf.writable(data, 100), Buf.writable(data + 100, 412),
                Buf.writable(st, 1));
        assertEquals(512, req.dataLength());
        // Copies across the two ranges are IoVector's (IoVectorTest); here: the ranges, in order, status excluded.
        assertEquals(2, req.dataSegmentCount());
        assertIov(0, data, 100);
        assertIov(1, data + 100, 412);
        assertEquals(ram.memory().translate(st, 1), req.statusRegion().address() + req.statusOffset());
    }

    @Test
    void withinCapacityIsOverflowSafe() {
        assertTrue(VirtioBlk.withinCapacity(0, 512, 1));
        assertFalse(VirtioBlk.withinCapacity(0, 513, 1));
        assertTrue(VirtioBlk.withinCapacity(1, 0, 1), "empty request at the end");
        assertFalse(VirtioBlk.withinCapacity(2, 0, 1));
        assertTrue(VirtioBlk.withinCapacity(99, 512, 100));
        assertFalse(VirtioBlk.withinCapacity(100, 512, 100));
        assertFalse(VirtioBlk.withinCapacity(Long.MAX_VALUE, 512, Long.MAX_VALUE));
        assertFalse(VirtioBlk.withinCapacity(-1, 512, Long.MAX_VALUE), "u64 sector with the top bit set");
        assertFalse(VirtioBlk.withinCapacity(Long.MAX_VALUE - 1, 1024, Long.MAX_VALUE));
        assertFalse(VirtioBlk.withinCapacity(0, -1, 100));
        assertTrue(VirtioBlk.withinCapacity(1, Long.MAX_VALUE, Long.MAX_VALUE), "2^54 sectors fit");
        assertFalse(VirtioBlk.withinCapacity(1, Long.MAX_VALUE, 1L << 54));
    }
}
