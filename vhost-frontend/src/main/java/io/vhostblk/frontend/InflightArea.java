package io.vhostblk.frontend;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.LinuxException;
import io.vhostblk.virtio.InflightRegion;

import java.lang.foreign.MemorySegment;

/**
 * The shared memory that tracks every queue's requests in flight (vhost-user INFLIGHT_SHMFD):
 * one {@link InflightRegion} per queue, back to back. The back-end creates it on GET_INFLIGHT_FD
 * and hands the memfd to the front-end, which keeps it while back-ends come and go and gives it
 * to each new one with SET_INFLIGHT_FD. Owned by the session thread.
 */
final class InflightArea implements AutoCloseable {
    private final int fd;
    private final MemorySegment mapping;
    private final int numQueues;
    private final int queueSize;

    private InflightArea(int fd, MemorySegment mapping, int numQueues, int queueSize) {
        this.fd = fd;
        this.mapping = mapping;
        this.numQueues = numQueues;
        this.queueSize = queueSize;
    }

    static long bytesFor(int numQueues, int queueSize) {
        return InflightRegion.queueBytes(queueSize) * numQueues;
    }

    /** A new zeroed area in a memfd (GET_INFLIGHT_FD). */
    static InflightArea create(String deviceId, int numQueues, int queueSize) throws LinuxException {
        long size = bytesFor(numQueues, queueSize);
        int fd = (int) Libc.check("memfd_create", Libc.memfdCreate("vhost-blk-inflight-" + deviceId, Libc.MFD_CLOEXEC),
                "inflight area of device " + deviceId);
        try {
            Libc.check("ftruncate", Libc.ftruncate(fd, size), "inflight area of device " + deviceId);
            return new InflightArea(fd, Libc.mmap(size, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0),
                    numQueues, queueSize);
        } catch (LinuxException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** Maps the front-end's area (SET_INFLIGHT_FD); takes ownership of {@code fd}, closing it on failure. */
    static InflightArea adopt(int fd, InflightInfo info) throws LinuxException {
        try {
            if (Libc.endsBefore(fd, info.mmapOffset() + info.mmapSize())) {
                throw new LinuxException("mmap", Errno.EINVAL, "inflight area of " + info.mmapSize() + " bytes at offset "
                        + info.mmapOffset() + " runs past the end of its file (" + Libc.lseek(fd, 0, Libc.SEEK_END) + " bytes)");
            }
            MemorySegment m = Libc.mmap(info.mmapSize(), Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd,
                    info.mmapOffset());
            return new InflightArea(fd, m, info.numQueues(), info.queueSize());
        } catch (LinuxException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    int fd() {
        return fd;
    }

    long size() {
        return mapping.byteSize();
    }

    int numQueues() {
        return numQueues;
    }

    int queueSize() {
        return queueSize;
    }

    /** A fresh view of queue {@code index}'s region, or null when the area does not cover that queue. */
    InflightRegion region(int index) {
        if (index >= numQueues) {
            return null;
        }
        long each = InflightRegion.queueBytes(queueSize);
        return InflightRegion.of(mapping.asSlice(each * index, each), queueSize);
    }

    @Override
    public void close() {
        Libc.munmap(mapping);
        Libc.close(fd);
    }
}
