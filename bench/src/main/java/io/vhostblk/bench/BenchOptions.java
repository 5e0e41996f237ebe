package io.vhostblk.bench;

import io.vhostblk.hooks.CommandKit;
import io.vhostblk.hooks.CommandUsageException;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The options of {@code vhost-blk bench}, parsed and checked.
 *
 * @param size      span of the device the job's offsets fall in (bytes from 0); 0 means the whole device
 * @param ringSize  virtqueue size; 0 picks the smallest power of two (at least 256) holding iodepth chains
 * @param pid       the back-end process whose CPU time is reported per I/O, or -1
 * @param packed    negotiate VIRTIO_F_RING_PACKED and drive packed virtqueues
 * @param idle      after the job, how long to stay connected with the queues started and no
 *                  I/O, measuring the back-end's CPU (zero: disconnect at once)
 * @param data      what write jobs write (unless {@code verify})
 */
public record BenchOptions(Path socket, RwMode rw, int blockSize, int iodepth, int queues, Duration runtime,
                           Duration ramp, long size, long pid, boolean json, boolean verify, boolean busyPoll,
                           boolean eventIdx, int ringSize, int readPercent, long seed, Duration stallTimeout,
                           Duration idle, boolean packed, WriteData data) {

    /** Descriptors per request: header, data, status. */
    static final int DESCRIPTORS_PER_IO = 3;

    /** Parses the arguments after {@code bench}. */
    public static BenchOptions parse(List<String> args) throws BenchUsageException {
        try {
            return CommandKit.parse(new BenchCommand(), args).options();
        } catch (BenchUsageException e) {
            throw e;
        } catch (CommandUsageException e) {
            throw new BenchUsageException(e.getMessage());
        }
    }
}
