package io.vhostblk.modules.cache;

/**
 * The slot table as found on a cache device after a crash or a clean stop: which slot holds which dirty block.
 * Where two entries name one block (a block rewritten into a new slot before the old entry was cleared), the
 * newer commit wins; entries with bad checksums, blocks beyond the volume and losers are stale: their slots wait
 * for the next commit to clear them before they are reused.
 *
 * @param dirtyBlock per slot, the dirty block it holds, or -1
 * @param stale      per slot, whether an entry that must be cleared is on the device
 * @param nextSeq    the commit number to continue with
 */
record SlotTable(long[] dirtyBlock, boolean[] stale, long nextSeq, int dirtyCount) {

    static SlotTable recover(CacheHeader header, byte[] raw) {
        int slots = (int) header.slots();
        long[] dirty = new long[slots];
        boolean[] stale = new boolean[slots];
        java.util.Arrays.fill(dirty, -1);
        long maxSeq = 0;
        int count = 0;
        if (raw != null) {
            SlotEntry entries = new SlotEntry();
            BlockTable holder = new BlockTable(slots);
            for (int s = 0; s < slots; s++) {
                int at = s * CacheHeader.ENTRY;
                long b = entries.block(raw, at);
                if (b == SlotEntry.EMPTY) {
                    continue;
                }
                if (b == SlotEntry.CORRUPT || b >= header.backingCapacity() / header.blockSize()) {
                    stale[s] = true;
                    continue;
                }
                long seq = SlotEntry.seq(raw, at);
                maxSeq = Math.max(maxSeq, seq);
                int other = holder.get(b);
                if (other >= 0) {
                    if (SlotEntry.seq(raw, other * CacheHeader.ENTRY) >= seq) {
                        stale[s] = true;
                        continue;
                    }
                    dirty[other] = -1;
                    stale[other] = true;
                    count--;
                }
                holder.put(b, s);
                dirty[s] = b;
                count++;
            }
        }
        return new SlotTable(dirty, stale, maxSeq + 1, count);
    }
}
