package io.vhostblk.modules.reduce;

/** {@code dedup}: identical blocks are stored once, on a reduce volume (docs/reduce.md); no settings. */
public final class DedupModule extends ReduceModule {

    public DedupModule() {
        super(ReduceModules.DEDUP);
    }
}
