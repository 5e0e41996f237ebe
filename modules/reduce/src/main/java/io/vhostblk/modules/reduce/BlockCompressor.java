package io.vhostblk.modules.reduce;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdException;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

import java.lang.foreign.MemorySegment;

/**
 * Compresses one block and back; a block is worth storing compressed only up to a bound the caller gives.
 * Works on native segments (their direct-buffer views), never copies through the heap.
 */
final class BlockCompressor {

    private static final System.Logger LOG = System.getLogger(BlockCompressor.class.getName());
    private static final LZ4Factory LZ4 = lz4();
    private static final int ZSTD_LEVEL = 3;

    private final LZ4Compressor lz4 = LZ4.fastCompressor();
    private final LZ4SafeDecompressor lz4Safe = LZ4.safeDecompressor();

    /**
     * LZ4 through JNI, which the jar carries for common platforms; the pure-Java code where it cannot load (about
     * three times the CPU per block). Asked for by name, since {@code fastestInstance} falls back silently, and did
     * so under the module's class loader.
     */
    private static LZ4Factory lz4() {
        try {
            return LZ4Factory.nativeInstance();
        } catch (Throwable e) { // UnsatisfiedLinkError, or the library's own wrapper of it
            LOG.log(System.Logger.Level.WARNING, "LZ4 JNI library not loaded, using the pure-Java compressor: " + e);
            return LZ4Factory.fastestJavaInstance();
        }
    }

    /**
     * The output buffer {@link #compress} needs for blocks of {@code blockSize}: room for the worst case of either
     * codec, so neither ever fails for lack of space.
     */
    static int maxOutput(int blockSize) {
        return Math.max(LZ4.fastCompressor().maxCompressedLength(blockSize), (int) Zstd.compressBound(blockSize));
    }

    /**
     * Compresses all of {@code src} into {@code dst} at 0; returns the length, or -1 if it exceeds {@code max}.
     * {@code dst} should hold {@link #maxOutput} bytes: then incompressible data is compressed to the end and
     * measured, which costs less than letting the codec stop early by throwing (an exception per incompressible
     * block cost ~30 µs of CPU in bench/reduce.sh, more than LZ4 finishing the block).
     */
    int compress(Codec codec, MemorySegment src, MemorySegment dst, int max) {
        int len = (int) src.byteSize();
        int room = (int) dst.byteSize();
        int n = switch (codec) {
            case LZ4 -> {
                try {
                    yield lz4.compress(src.asByteBuffer(), 0, len, dst.asByteBuffer(), 0, room);
                } catch (LZ4Exception e) {
                    yield -1; // dst smaller than the bound and the output did not fit
                }
            }
            case ZSTD -> {
                try {
                    long r = Zstd.compressDirectByteBuffer(dst.asByteBuffer(), 0, room, src.asByteBuffer(), 0, len, ZSTD_LEVEL);
                    yield Zstd.isError(r) ? -1 : (int) r;
                } catch (ZstdException e) {
                    yield -1; // "destination buffer is too small": dst smaller than the bound
                }
            }
        };
        return n > max ? -1 : n;
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
