package io.vhostblk.bench;

import io.vhostblk.virtio.SplitRingDriver;
import io.vhostblk.virtio.SplitVirtqueue;

import java.lang.invoke.VarHandle;

/** A split ring for the bench: each slot owns three fixed descriptors (header, data, status); its head names it. */
final class SplitBenchRing implements BenchRing {
    private final SplitRingDriver driver;
    private final long[] dataGpa;
    private final int[] dataLen;
    private int usedSeen;

    SplitBenchRing(SplitRingDriver driver, int slots) {
        this.driver = driver;
        this.dataGpa = new long[slots];
        this.dataLen = new int[slots];
    }

    /** The ring itself, for workloads that write their own chains (the crash workload). */
    SplitRingDriver driver() {
        return driver;
    }

    @Override
    public void setUpSlot(int slot, long header, long data, int bs, long status) {
        int d = BenchOptions.DESCRIPTORS_PER_IO * slot;
        dataGpa[slot] = data;
        dataLen[slot] = bs;
        driver.writeDescriptor(d, header, io.vhostblk.virtio.VirtioBlk.HEADER_BYTES, SplitVirtqueue.DESC_F_NEXT, d + 1);
        driver.writeDescriptor(d + 1, data, bs, SplitVirtqueue.DESC_F_NEXT, d + 2);
        driver.writeDescriptor(d + 2, status, 1, SplitVirtqueue.DESC_F_WRITE, 0);
    }

    @Override
    public void offer(int slot, boolean read) {
        int d = BenchOptions.DESCRIPTORS_PER_IO * slot;
        driver.writeDescriptor(d + 1, dataGpa[slot], dataLen[slot],
                SplitVirtqueue.DESC_F_NEXT | (read ? SplitVirtqueue.DESC_F_WRITE : 0), d + 2);
        driver.offer(d);
    }

    @Override
    public void publish() {
        driver.publish();
    }

    @Override
    public boolean kickNeeded(boolean eventIdx) {
        return driver.kickNeeded(eventIdx);
    }

    @Override
    public int reapSlot() throws BenchException {
        int id = driver.reapUsed();
        if (id < 0) {
            return -1;
        }
        usedSeen = (usedSeen + 1) & 0xffff;
        int slot = id / BenchOptions.DESCRIPTORS_PER_IO;
        if (id % BenchOptions.DESCRIPTORS_PER_IO != 0 || slot >= dataGpa.length) {
            throw new BenchException("back-end returned used id " + id + ", which is not the head of a chain");
        }
        return slot;
    }

    @Override
    public void callsOff(boolean eventIdx) {
        if (eventIdx) {
            driver.setUsedEvent((usedSeen - 1) & 0xffff); // never crossed: no calls
        } else {
            driver.setAvailFlags(SplitVirtqueue.AVAIL_F_NO_INTERRUPT);
        }
    }

    @Override
    public boolean armCallAndCheck(boolean eventIdx) {
        if (eventIdx) {
            driver.setUsedEvent(usedSeen);
        }
        VarHandle.fullFence();
        return driver.usedIdx() != usedSeen;
    }
}
