package io.vhostblk.modules.reduce;

/** {@code compress}: blocks are stored LZ4- or zstd-compressed and packed, on a reduce volume (docs/reduce.md); no settings. */
public final class CompressModule extends ReduceModule {

    public CompressModule() {
        super(ReduceModules.COMPRESS);
    }
}
