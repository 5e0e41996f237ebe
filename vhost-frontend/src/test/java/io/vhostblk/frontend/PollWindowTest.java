package io.vhostblk.frontend;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The adaptive poll window's arithmetic, fed with chosen wait durations (no clock). */
class PollWindowTest {
    private static final long MAX = 50_000;

    @Test
    void startsAtZeroAndGrowsByDoublingWhileWorkArrivesWithinTheLimit() {
        PollWindow w = new PollWindow(MAX);
        assertEquals(0, w.nanos(), "no polling until a wait shows it would have paid");
        w.observe(10_000);
        assertEquals(PollWindow.START_NANOS, w.nanos());
        w.observe(10_000);
        assertEquals(8_000, w.nanos());
        w.observe(10_000);
        assertEquals(16_000, w.nanos());
        w.observe(40_000);
        assertEquals(32_000, w.nanos());
        w.observe(45_000);
        assertEquals(MAX, w.nanos(), "clamped at the limit");
        w.observe(49_000);
        assertEquals(MAX, w.nanos());
    }

    @Test
    void workFoundWithinTheWindowLeavesItAlone() {
        PollWindow w = grownTo(16_000);
        w.observe(1);
        w.observe(16_000);
        assertEquals(16_000, w.nanos());
    }

    @Test
    void waitsLongerThanTheLimitHalveTheWindowDownToZero() {
        PollWindow w = grownTo(MAX);
        w.observe(MAX + 1);
        assertEquals(25_000, w.nanos());
        w.observe(10_000_000);
        assertEquals(12_500, w.nanos());
        w.observe(10_000_000);
        assertEquals(6_250, w.nanos());
        w.observe(10_000_000);
        assertEquals(0, w.nanos(), "below the first step it stops polling: an idle queue only sleeps");
        w.observe(10_000_000);
        assertEquals(0, w.nanos());
    }

    @Test
    void aZeroLimitNeverPolls() {
        PollWindow w = new PollWindow(0);
        w.observe(1);
        w.observe(0);
        w.observe(1_000_000);
        assertEquals(0, w.nanos());
    }

    @Test
    void aLimitBelowTheFirstStepIsTheOnlyStep() {
        PollWindow w = new PollWindow(2_000);
        w.observe(1_500);
        assertEquals(2_000, w.nanos());
        w.observe(3_000);
        assertEquals(0, w.nanos());
    }

    @Test
    void aNegativeLimitIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new PollWindow(-1));
        assertThrows(IllegalArgumentException.class, () -> new PollWindow(MAX, -1));
    }

    @Test
    void whileTheDriverHoldsRequestsTheWindowGrowsToTheLongerLimit() {
        PollWindow w = new PollWindow(MAX, 200_000);
        for (int i = 0; i < 7; i++) {
            w.observe(150_000, true); // a disk answering 150 µs after each wait began
        }
        assertEquals(200_000, w.nanos(), "4 µs doubled up to the busy limit");
        assertEquals(200_000, w.nanos(true));
        assertEquals(MAX, w.nanos(false), "with nothing at the driver the spin stays within the idle limit");
        w.observe(150_000, true);
        assertEquals(200_000, w.nanos(), "caught within the window: unchanged");
    }

    @Test
    void anIdleWaitBeyondTheIdleLimitHalvesWhatWasSpun() {
        PollWindow w = new PollWindow(MAX, 200_000);
        while (w.nanos() < 200_000) {
            w.observe(150_000, true);
        }
        w.observe(10_000_000, false);
        assertEquals(25_000, w.nanos(), "half of the 50 µs actually spun, not of the 200 µs window");
    }

    @Test
    void theBusyLimitIsNeverBelowTheIdleOneAndZeroTurnsBothOff() {
        assertEquals(MAX, new PollWindow(MAX, 10_000).busyMaxNanos());
        PollWindow off = new PollWindow(0, 200_000);
        assertEquals(0, off.busyMaxNanos(), "--poll-us 0 turns polling off, requests in flight or not");
        off.observe(1_000, true);
        assertEquals(0, off.nanos(true));
    }

    private static PollWindow grownTo(long nanos) {
        PollWindow w = new PollWindow(MAX);
        while (w.nanos() < nanos) {
            w.observe(Math.min(MAX, Math.max(1, w.nanos() * 2)));
        }
        assertEquals(nanos, w.nanos());
        return w;
    }
}
