package io.vhostblk.modules.reduce;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BlockCompressorTest {

    private static final int BS = 4096;
    private final BlockCompressor c = new BlockCompressor();

    private static MemorySegment block(byte[] data) {
        MemorySegment s = Arena.ofAuto().allocate(BS, 4096);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, s, 0, BS);
        return s;
    }

    @ParameterizedTest
    @EnumSource(Codec.class)
    void compressibleBlocksRoundTripFromAnyOffsetOfAPackedBlock(Codec codec) {
        byte[] text = ReduceVolumeTest.compressible(5, BS);
        MemorySegment comp = Arena.ofAuto().allocate(BS, 4096);
        int n = c.compress(codec, block(text), comp, PackedBlock.maxFragment(BS));
        assertTrue(n > 0 && n < 200, "text compresses well: " + n);
        MemorySegment packed = Arena.ofAuto().allocate(BS, 4096);
        MemorySegment.copy(comp, 0, packed, 1000, n);
        MemorySegment out = Arena.ofAuto().allocate(BS, 4096);
        assertTrue(c.decompress(codec, packed, 1000, n, out));
        assertArrayEquals(text, out.toArray(ValueLayout.JAVA_BYTE));
        assertFalse(c.decompress(codec, packed, 1001, n - 1, out), "a damaged fragment is reported, not thrown");
    }

    @ParameterizedTest
    @EnumSource(Codec.class)
    void incompressibleOrBarelyCompressibleBlocksAreRefusedNotThrown(Codec codec) {
        // With room for the worst case (as the volume gives it), and with too little room (the codec gives up).
        for (int room : new int[] {BlockCompressor.maxOutput(BS), BS}) {
            MemorySegment comp = Arena.ofAuto().allocate(room, 4096);
            assertEquals(-1, c.compress(codec, block(ReduceVolumeTest.random(3, BS)), comp, PackedBlock.maxFragment(BS)));
            byte[] mixed = ReduceVolumeTest.random(4, BS);
            System.arraycopy(ReduceVolumeTest.compressible(4, BS), 0, mixed, 0, 1500); // compresses, but not to half
            assertEquals(-1, c.compress(codec, block(mixed), comp, PackedBlock.maxFragment(BS)));
        }
        assertTrue(BlockCompressor.maxOutput(BS) > BS, "incompressible data grows a little in either codec");
    }
}
