package io.vhostblk.bench;

import io.vhostblk.virtio.PackedRingDriver;
import io.vhostblk.virtio.PackedVirtqueue;
import io.vhostblk.virtio.VirtioBlk;

import java.lang.invoke.VarHandle;

/**
 * A packed ring for the bench: each offer writes the slot's three descriptors at the ring's avail
 * position under a free buffer id, which maps back to the slot when the device answers.
 */
final class PackedBenchRing implements BenchRing {
    private final PackedRingDriver driver;
    private final long[] header;
    private final long[] data;
    private final int[] dataLen;
    private final long[] status;
    /** Per buffer id: the slot it carries, or -1. */
    private final int[] slotOfId;

    PackedBenchRing(PackedRingDriver driver, int slots) {
        this.driver = driver;
        this.header = new long[slots];
        this.data = new long[slots];
        this.dataLen = new int[slots];
        this.status = new long[slots];
        this.slotOfId = new int[driver.size()];
        java.util.Arrays.fill(slotOfId, -1);
    }

    @Override
    public void setUpSlot(int slot, long headerGpa, long dataGpa, int bs, long statusGpa) {
        header[slot] = headerGpa;
        data[slot] = dataGpa;
        dataLen[slot] = bs;
        status[slot] = statusGpa;
    }

    @Override
    public void offer(int slot, boolean read) {
        int id = driver.addRequest(header[slot], VirtioBlk.HEADER_BYTES, data[slot], dataLen[slot], read, status[slot]);
        if (id < 0) {
            // The ring holds 3 descriptors per slot (BenchOptions checks): a slot is offered only when free.
            throw new IllegalStateException("packed ring full offering slot " + slot);
        }
        slotOfId[id] = slot;
    }

    @Override
    public void publish() {
        driver.publish();
    }

    @Override
    public boolean kickNeeded(boolean eventIdx) {
        return driver.kickNeeded();
    }

    @Override
    public int reapSlot() throws BenchException {
        int id = driver.reapUsed();
        if (id < 0) {
            return -1;
        }
        int slot = id < slotOfId.length ? slotOfId[id] : -1;
        if (slot < 0) {
            throw new BenchException("back-end returned buffer id " + id + ", which names no request in flight");
        }
        slotOfId[id] = -1;
        return slot;
    }

    @Override
    public void callsOff(boolean eventIdx) {
        driver.setDriverEvent(PackedVirtqueue.EVENT_FLAG_DISABLE, 0);
    }

    @Override
    public boolean armCallAndCheck(boolean eventIdx) {
        driver.setDriverEvent(eventIdx ? PackedVirtqueue.EVENT_FLAG_DESC : PackedVirtqueue.EVENT_FLAG_ENABLE,
                driver.usedPosition());
        VarHandle.fullFence();
        return driver.usedPending();
    }
}
