package io.vhostblk.modules.reduce;

/**
 * What a volume has done, for the module to report on the control socket. Written by the volume's thread only;
 * readers on other threads see recent values (plain fields, no ordering promise).
 */
public final class ReduceCounters {

    long logicalBytesWritten;
    long zeroBlocks;
    long dedupHits;
    long dedupCompareMismatches;
    long compressedBlocks;
    long compressedBytes;
    long packedBlocksWritten;
    long wholeBlocksWritten;
    long journalBlocksWritten;
    long checkpointsWritten;
    long commits;
    long flushRequests;
    long blocksPunched;

    /** Bytes the guest wrote (including zeroes and discards). */
    public long logicalBytesWritten() {
        return logicalBytesWritten;
    }

    /** Blocks written as all zeros, which cost no space. */
    public long zeroBlocks() {
        return zeroBlocks;
    }

    /** Blocks shared with an identical existing block after a byte compare. */
    public long dedupHits() {
        return dedupHits;
    }

    /** Fingerprint matches whose bytes differed (a collision or a stale index entry): not shared. */
    public long dedupCompareMismatches() {
        return dedupCompareMismatches;
    }

    /** Blocks stored as compressed fragments, and the bytes those fragments take. */
    public long compressedBlocks() {
        return compressedBlocks;
    }

    public long compressedBytes() {
        return compressedBytes;
    }

    public long packedBlocksWritten() {
        return packedBlocksWritten;
    }

    public long wholeBlocksWritten() {
        return wholeBlocksWritten;
    }

    public long journalBlocksWritten() {
        return journalBlocksWritten;
    }

    public long checkpointsWritten() {
        return checkpointsWritten;
    }

    /** Metadata commits (each is two backing flushes). */
    public long commits() {
        return commits;
    }

    public long flushRequests() {
        return flushRequests;
    }

    /** Freed blocks given back to the store (punched); the others were kept for reuse ({@code SpaceMap}). */
    public long blocksPunched() {
        return blocksPunched;
    }
}
