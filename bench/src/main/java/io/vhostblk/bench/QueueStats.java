package io.vhostblk.bench;

import io.vhostblk.hooks.LatencyHistogram;

/** What one queue saw; written by its thread only, read after the thread has ended (or merged into a total). */
final class QueueStats {
    /** Latency of requests completed inside the measured interval. */
    final LatencyHistogram latency = new LatencyHistogram();
    /** Requests completed inside the measured interval, successful or not. */
    long ios;
    long reads;
    long writes;
    long bytes;
    /** Requests that completed with a status other than VIRTIO_BLK_S_OK, whenever they completed. */
    long errors;
    /** Status byte of the first failed request, or -1. */
    int firstErrorStatus = -1;
    /** Blocks whose data read back differed from the --verify pattern. */
    long verifyMismatches;
    /** Blocks checked against the pattern. */
    long verifiedBlocks;
    /** First mismatch, for the report: disk offset of the block, byte within it; -1 when none. */
    long firstMismatchOffset = -1;
    int firstMismatchByte = -1;

    void add(QueueStats o) {
        latency.add(o.latency);
        ios += o.ios;
        reads += o.reads;
        writes += o.writes;
        bytes += o.bytes;
        errors += o.errors;
        if (firstErrorStatus < 0) {
            firstErrorStatus = o.firstErrorStatus;
        }
        verifyMismatches += o.verifyMismatches;
        verifiedBlocks += o.verifiedBlocks;
        if (firstMismatchOffset < 0) {
            firstMismatchOffset = o.firstMismatchOffset;
            firstMismatchByte = o.firstMismatchByte;
        }
    }
}
