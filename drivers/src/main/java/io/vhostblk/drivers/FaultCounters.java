package io.vhostblk.drivers;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a {@link FaultyDriver} has injected, per device; ENOSPC is counted apart from EIO. The control
 * socket ({@code ctl devices}) and the metrics ({@code vhost_blk_injected_faults_total{kind}}) show
 * {@link #byKind()}.
 */
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

    /**
     * Every count under its kind's name, in a fixed order: {@code eio}, {@code enospc}, {@code short},
     * {@code latency} (requests delayed), {@code power_cut_refused} (requests failed after the cut),
     * {@code power_cut_dropped} and {@code power_cut_kept} (unflushed writes rolled back, or kept by reorder).
     */
    public Map<String, Long> byKind() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("eio", eio());
        m.put("enospc", enospc());
        m.put("short", shortTransfers());
        m.put("latency", delayed());
        m.put("power_cut_refused", failedAfterPowerCut());
        m.put("power_cut_dropped", droppedAtPowerCut());
        m.put("power_cut_kept", keptAtPowerCut());
        return m;
    }

    @Override
    public String toString() {
        return "eio=" + eio() + " enospc=" + enospc() + " short=" + shortTransfers() + " delayed=" + delayed()
                + " failed-after-power-cut=" + failedAfterPowerCut() + " dropped-at-power-cut=" + droppedAtPowerCut()
                + " kept-at-power-cut=" + keptAtPowerCut();
    }
}
