package io.vhostblk.drivers;

import java.util.concurrent.atomic.AtomicLong;

/** What a {@link FaultyDriver} has injected, per device; ENOSPC is counted apart from EIO. */
public final class FaultCounters {
    final AtomicLong eio = new AtomicLong();
    final AtomicLong enospc = new AtomicLong();
    final AtomicLong shortTransfers = new AtomicLong();
    final AtomicLong delayed = new AtomicLong();
    final AtomicLong failedAfterPowerCut = new AtomicLong();
    final AtomicLong droppedAtPowerCut = new AtomicLong();
    final AtomicLong keptAtPowerCut = new AtomicLong();

    public long eio() {
        return eio.get();
    }

    public long enospc() {
        return enospc.get();
    }

    public long shortTransfers() {
        return shortTransfers.get();
    }

    public long delayed() {
        return delayed.get();
    }

    /** Requests refused because the power was cut. */
    public long failedAfterPowerCut() {
        return failedAfterPowerCut.get();
    }

    /** Unflushed writes rolled back at the power cut. */
    public long droppedAtPowerCut() {
        return droppedAtPowerCut.get();
    }

    /** Unflushed writes that survived the power cut (reorder). */
    public long keptAtPowerCut() {
        return keptAtPowerCut.get();
    }

    @Override
    public String toString() {
        return "eio=" + eio() + " enospc=" + enospc() + " short=" + shortTransfers() + " delayed=" + delayed()
                + " failed-after-power-cut=" + failedAfterPowerCut() + " dropped-at-power-cut=" + droppedAtPowerCut()
                + " kept-at-power-cut=" + keptAtPowerCut();
    }
}
