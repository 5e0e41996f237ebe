package io.vhostblk.modules.reduce;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdException;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

import java.lang.foreign.MemorySegment;

/**
 * Compresses one block into a bounded space and back. The bound is the early abort: LZ4 and zstd stop as soon
 * as the output would exceed it, so incompressible data is not compressed to the end only to be thrown away.
 * Works on native segments (their direct-buffer views), never copies through the heap.
 */
final class BlockCompressor {

    private static final LZ4Factory LZ4 = LZ4Factory.fastestInstance();
    private static final int ZSTD_LEVEL = 3;

    private final LZ4Compressor lz4 = LZ4.fastCompressor();
    private final LZ4SafeDecompressor lz4Safe = LZ4.safeDecompressor();

    /** Compresses all of {@code src} into {@code dst} at 0; returns the length, or -1 if it exceeds {@code max}. */
    int compress(Codec codec, MemorySegment src, MemorySegment dst, int max) {
        int len = (int) src.byteSize();
        return switch (codec) {
            case LZ4 -> {
                try {
                    yield lz4.compress(src.asByteBuffer(), 0, len, dst.asByteBuffer(), 0, max);
                } catch (LZ4Exception e) {
                    yield -1; // output would not fit: incompressible enough to store whole
                }
            }
            case ZSTD -> {
                try {
                    long r = Zstd.compressDirectByteBuffer(dst.asByteBuffer(), 0, max, src.asByteBuffer(), 0, len, ZSTD_LEVEL);
                    yield Zstd.isError(r) ? -1 : (int) r;
                } catch (ZstdException e) {
                    yield -1; // "destination buffer is too small": incompressible enough to store whole
                }
            }
        };
    }

    /**
     * Decompresses {@code length} bytes at {@code offset} of {@code packed} into all of {@code dst}; false if the
     * fragment is damaged or does not give exactly one block.
     */
    boolean decompress(Codec codec, MemorySegment packed, int offset, int length, MemorySegment dst) {
        int block = (int) dst.byteSize();
        try {
            return switch (codec) {
                case LZ4 -> lz4Safe.decompress(packed.asByteBuffer(), offset, length, dst.asByteBuffer(), 0, block) == block;
                case ZSTD -> {
                    long r = Zstd.decompressDirectByteBuffer(dst.asByteBuffer(), 0, block, packed.asByteBuffer(), offset, length);
                    yield !Zstd.isError(r) && r == block;
                }
            };
        } catch (LZ4Exception | ZstdException e) {
            return false; // damaged fragment: the caller reports it with the block's address
        }
    }
}
