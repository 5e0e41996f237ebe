package io.vhostblk.virtio;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class BlkConfigTest {

    @Test
    void encodesEveryFieldAtItsSpecOffset() {
        BlkConfig c = BlkConfig.builder()
                .capacitySectors(0x0102030405060708L)
                .sizeMax(0x11121314)
                .segMax(0x21222324)
                .geometry(0x3132, 0x33, 0x34)
                .blkSize(4096)
                .topology(3, 1, 0x4142, 0x51525354)
                .writeback(true)
                .numQueues(0x6162)
                .discard(0x71727374, 0x01020304, 8)
                .writeZeroes(0x0a0b0c0d, 0x0e0f1011, true)
                .build();
        byte[] b = c.toBytes();
        assertEquals(60, b.length);
        // Read back independently with a plain little-endian ByteBuffer.
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x0102030405060708L, bb.getLong(0));
        assertEquals(0x11121314, bb.getInt(8));
        assertEquals(0x21222324, bb.getInt(12));
        assertEquals(0x3132, bb.getShort(16));
        assertEquals(0x33, bb.get(18));
        assertEquals(0x34, bb.get(19));
        assertEquals(4096, bb.getInt(20));
        assertEquals(3, bb.get(24));
        assertEquals(1, bb.get(25));
        assertEquals(0x4142, bb.getShort(26));
        assertEquals(0x51525354, bb.getInt(28));
        assertEquals(1, bb.get(32));
        assertEquals(0, bb.get(33), "unused0");
        assertEquals(0x6162, bb.getShort(34));
        assertEquals(0x71727374, bb.getInt(36));
        assertEquals(0x01020304, bb.getInt(40));
        assertEquals(8, bb.getInt(44));
        assertEquals(0x0a0b0c0d, bb.getInt(48));
        assertEquals(0x0e0f1011, bb.getInt(52));
        assertEquals(1, bb.get(56));
        assertEquals(0, bb.get(57) | bb.get(58) | bb.get(59), "unused1");
        assertEquals(c, BlkConfig.fromBytes(b));
    }

    @Test
    void littleEndianCapacityBytes() {
        byte[] b = BlkConfig.builder().capacitySectors(2048).build().toBytes();
        assertEquals(0, b[0]);
        assertEquals(8, b[1]);
        assertEquals(512, ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt(20), "default blk_size");
        assertEquals(1, ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getShort(34), "default num_queues");
    }

    @Test
    void writebackToggleAndValidation() {
        BlkConfig c = BlkConfig.builder().capacitySectors(8).build();
        assertEquals(1, c.withWriteback(true).toBytes()[BlkConfig.WRITEBACK_OFFSET]);
        assertEquals(0, c.withWriteback(true).withWriteback(false).writeback());
        assertThrows(IllegalArgumentException.class, () -> BlkConfig.builder().capacitySectors(-1).build());
        assertThrows(IllegalArgumentException.class, () -> BlkConfig.builder().geometry(70000, 1, 1).build());
        assertThrows(IllegalArgumentException.class, () -> BlkConfig.builder().numQueues(65536).build());
        assertThrows(IllegalArgumentException.class, () -> BlkConfig.fromBytes(new byte[59]));
    }
}
