package io.vhostblk.virtio;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * One split virtqueue's inflight-tracking region (vhost-user {@code INFLIGHT_SHMFD}), in the
 * layout QEMU allocates and libvhost-user uses, so the front-end keeps it across a back-end
 * crash and the next back-end learns which requests never completed.
 *
 * <p>Layout, little-endian: {features u64, version u16, desc_num u16, last_batch_head u16,
 * used_idx u16}, then per descriptor head {inflight u8, padding[5], next u16, counter u64}.
 *
 * <p>Protocol, per request: {@link #markInflight} (flag and fetch counter) before the request
 * is processed; on completion the used element is written and {@link #markUsed} records it in
 * the batch; {@link #beforePublish} links the batch from {@code last_batch_head}; used.idx is
 * published; {@link #afterPublish} clears the batch's flags and then stores {@code used_idx}.
 * A crash between any two steps is repaired by {@link #recover}: if the ring's used.idx is ahead
 * of the region's, the elements between them were published, so their flags are cleared; every
 * head still flagged is resubmitted, oldest fetch first, and the next avail index is
 * used.idx + in flight. Single-threaded: the queue's loop owns it.
 */
public final class InflightRegion {
    /** The region format this code writes; 0 in a region means "never initialised". */
    public static final int VERSION = 1;
    /**
     * A packed ring's record (this back-end's own format, not libvhost-user's packed layout): no
     * per-request tracking, only the ring state a cleanly stopped queue left, so a restarted
     * back-end resumes where it stopped although the front-end's vring base is stale.
     */
    public static final int PACKED_VERSION = 0x7001;
    private static final int PACKED_RUNNING = 1;
    private static final int PACKED_STOPPED = 2;
    private static final long PACKED_STATE_AT = 12;
    private static final long PACKED_BASE_AT = 16;
    public static final long HEADER_BYTES = 16;
    public static final long DESC_STATE_BYTES = 16;
    /** Each queue's region starts on a 64-byte boundary. */
    public static final long ALIGNMENT = 64;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long VERSION_AT = 8;
    private static final long DESC_NUM_AT = 10;
    private static final long LAST_BATCH_HEAD_AT = 12;
    private static final long USED_IDX_AT = 14;
    private static final long INFLIGHT_AT = 0;
    private static final long NEXT_AT = 6;
    private static final long COUNTER_AT = 8;

    private final MemorySegment region;
    private final int descNum;
    /** Heads pushed to the used ring since the last publish, in push order. */
    private final int[] batch;
    /** Per head: pushed to the used ring and not yet published (the flag is still set then). */
    private final boolean[] completing;
    private int batchLength;
    /** Heads to hand out again, in fetch order; filled by {@link #recover}. */
    private final int[] resubmit;
    private int resubmitCount;
    private int resubmitNext;
    private long counter;

    private InflightRegion(MemorySegment region, int descNum) {
        this.region = region;
        this.descNum = descNum;
        this.batch = new int[descNum];
        this.completing = new boolean[descNum];
        this.resubmit = new int[descNum];
    }

    /** Bytes one queue of {@code queueSize} descriptors takes, padded to {@link #ALIGNMENT}. */
    public static long queueBytes(int queueSize) {
        long raw = HEADER_BYTES + DESC_STATE_BYTES * queueSize;
        return (raw + ALIGNMENT - 1) & -ALIGNMENT;
    }

    /**
     * A view of one queue's region in shared memory (at least {@link #queueBytes} long) for
     * {@code descNum} descriptor heads.
     */
    public static InflightRegion of(MemorySegment region, int descNum) {
        if (descNum < 1 || descNum > SplitVirtqueue.MAX_SIZE) {
            throw new IllegalArgumentException("inflight desc_num " + descNum + " not in 1.." + SplitVirtqueue.MAX_SIZE);
        }
        if (region.byteSize() < queueBytes(descNum)) {
            throw new IllegalArgumentException("inflight region of " + region.byteSize() + " bytes is smaller than the "
                    + queueBytes(descNum) + " bytes " + descNum + " descriptors need");
        }
        return new InflightRegion(region.asSlice(0, queueBytes(descNum)), descNum);
    }

    /**
     * A region in this process's memory, for a front-end that shares none: the same bookkeeping
     * (and the same double-completion check), nothing survives the process.
     */
    public static InflightRegion detached(int descNum) {
        return of(Arena.ofAuto().allocate(queueBytes(descNum), ALIGNMENT), descNum);
    }

    public int descNum() {
        return descNum;
    }

    /** Whether head's inflight flag is set in the region. */
    public boolean isInflight(int head) {
        return region.get(ValueLayout.JAVA_BYTE, desc(head) + INFLIGHT_AT) != 0;
    }

    /** The region's used_idx: the used.idx up to which completions are fully accounted. */
    public int usedIdx() {
        return region.get(U16, USED_IDX_AT) & 0xffff;
    }

    public int version() {
        return region.get(U16, VERSION_AT) & 0xffff;
    }

    private long desc(int head) {
        return HEADER_BYTES + DESC_STATE_BYTES * head;
    }

    /**
     * Brings the region in line with the ring at queue start and returns the next avail index.
     * A region never initialised (version 0: fresh from GET_INFLIGHT_FD) is initialised and
     * {@code base} (the front-end's SET_VRING_BASE) is used; otherwise the region is the truth.
     *
     * @param ringUsedIdx used.idx as it is in guest memory now
     * @param ringSize    the ring's size: a head at or beyond it is not a request of this ring
     * @throws VirtioException the region claims more requests in flight than the ring holds
     */
    public int recover(int ringUsedIdx, int ringSize, int base) throws VirtioException {
        if (ringSize > descNum) {
            throw new VirtioException("queue size " + ringSize + " exceeds the inflight region's " + descNum + " descriptors");
        }
        resubmitCount = 0;
        resubmitNext = 0;
        batchLength = 0;
        counter = 0;
        if (version() == 0 || version() == PACKED_VERSION) {
            // A packed ring's record tracks no split requests: start afresh.
            region.asSlice(HEADER_BYTES).fill((byte) 0);
            region.set(U16, DESC_NUM_AT, (short) descNum);
            region.set(U16, USED_IDX_AT, (short) ringUsedIdx);
            region.set(U16, VERSION_AT, (short) VERSION);
            return base;
        }
        if (version() != VERSION) {
            throw new VirtioException("inflight region version " + version() + " is not " + VERSION);
        }
        int accounted = usedIdx();
        int published = (ringUsedIdx - accounted) & 0xffff;
        if (published > ringSize) {
            throw new VirtioException("used.idx " + ringUsedIdx + " is " + published + " ahead of the inflight region's "
                    + accounted + ", more than the queue size " + ringSize);
        }
        if (published != 0) {
            // Crashed after publishing a batch, before clearing it: its heads are done.
            int head = region.get(U16, LAST_BATCH_HEAD_AT) & 0xffff;
            for (int i = 0; i < published && head < descNum; i++) {
                region.set(ValueLayout.JAVA_BYTE, desc(head) + INFLIGHT_AT, (byte) 0);
                head = region.get(U16, desc(head) + NEXT_AT) & 0xffff;
            }
            VarHandle.storeStoreFence();
            region.set(U16, USED_IDX_AT, (short) ringUsedIdx);
        }
        for (int head = 0; head < descNum; head++) {
            if (isInflight(head)) {
                if (head >= ringSize) {
                    throw new VirtioException("inflight region has head " + head + " in flight, beyond queue size " + ringSize);
                }
                resubmit[resubmitCount++] = head;
            }
        }
        sortByCounter();
        if (resubmitCount > 0) {
            counter = region.get(U64, desc(resubmit[resubmitCount - 1]) + COUNTER_AT) + 1;
        }
        return (ringUsedIdx + resubmitCount) & 0xffff;
    }

    /**
     * Where a packed ring resumes. A region never initialised, or last used by a split ring,
     * holds nothing for it: {@code frontEndBase} (SET_VRING_BASE). A packed record of a cleanly
     * stopped queue holds the truth. Records nothing; {@link #packedRunning} does.
     *
     * @throws VirtioException the previous back-end did not stop the ring (it died): what it had
     *                         in flight and where the ring stands are lost, and guessing could
     *                         make the device write into descriptors the guest still owns
     */
    public int packedResumeBase(int frontEndBase) throws VirtioException {
        if (version() != PACKED_VERSION) {
            return frontEndBase;
        }
        int state = region.get(U16, PACKED_STATE_AT);
        if (state == PACKED_STOPPED) {
            return region.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), PACKED_BASE_AT);
        }
        throw new VirtioException("the packed ring was still running when its previous back-end went away: its "
                + "requests in flight and ring position are not tracked for packed rings, so it is not resumed "
                + "(reset the device, e.g. reboot the guest)");
    }

    /** Records that a packed ring runs (from {@code base}) or stopped cleanly at {@code base}. */
    public void packedRecord(boolean running, int base) {
        region.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), PACKED_BASE_AT, base);
        region.set(U16, PACKED_STATE_AT, (short) (running ? PACKED_RUNNING : PACKED_STOPPED));
        region.set(U16, DESC_NUM_AT, (short) descNum);
        VarHandle.storeStoreFence();
        region.set(U16, VERSION_AT, (short) PACKED_VERSION);
    }

    /** Insertion sort of the resubmit list by fetch counter (runs once per queue start). */
    private void sortByCounter() {
        for (int i = 1; i < resubmitCount; i++) {
            int head = resubmit[i];
            long c = region.get(U64, desc(head) + COUNTER_AT);
            int j = i - 1;
            while (j >= 0 && Long.compareUnsigned(region.get(U64, desc(resubmit[j]) + COUNTER_AT), c) > 0) {
                resubmit[j + 1] = resubmit[j];
                j--;
            }
            resubmit[j + 1] = head;
        }
    }

    /** How many recovered requests are still to be handed out again. */
    public int resubmitPending() {
        return resubmitCount - resubmitNext;
    }

    /** The next recovered head to process again (oldest fetch first), or -1 when none is left. */
    public int nextResubmit() {
        return resubmitNext < resubmitCount ? resubmit[resubmitNext++] : -1;
    }

    /** Whether head's used element was written in this batch and is not yet published. */
    public boolean completing(int head) {
        return completing[head];
    }

    /** Step 1: head was fetched and is about to be processed. */
    public void markInflight(int head) {
        long d = desc(head);
        region.set(U64, d + COUNTER_AT, counter++);
        region.set(ValueLayout.JAVA_BYTE, d + INFLIGHT_AT, (byte) 1);
    }

    /**
     * Step 2: head's used element was written. Refuses a head that is not in flight or was
     * already completed in this batch: that would hand the guest one request's completion twice.
     */
    public void markUsed(int head) {
        if (!isInflight(head) || completing[head]) {
            throw new IllegalStateException("head " + head + " completed twice (it is not in flight)");
        }
        completing[head] = true;
        batch[batchLength++] = head;
    }

    /** Step 3, before used.idx is published: the batch is listed from last_batch_head through next. */
    public void beforePublish() {
        if (batchLength == 0) {
            return;
        }
        for (int i = 0; i + 1 < batchLength; i++) {
            region.set(U16, desc(batch[i]) + NEXT_AT, (short) batch[i + 1]);
        }
        region.set(U16, LAST_BATCH_HEAD_AT, (short) batch[0]);
        VarHandle.storeStoreFence();
    }

    /** Step 4, after used.idx was published as {@code usedIdx}: clear the batch's flags, then record the index. */
    public void afterPublish(int usedIdx) {
        for (int i = 0; i < batchLength; i++) {
            int head = batch[i];
            region.set(ValueLayout.JAVA_BYTE, desc(head) + INFLIGHT_AT, (byte) 0);
            completing[head] = false;
        }
        batchLength = 0;
        VarHandle.storeStoreFence();
        region.set(U16, USED_IDX_AT, (short) usedIdx);
    }
}
