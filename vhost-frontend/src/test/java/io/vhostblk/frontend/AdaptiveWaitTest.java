package io.vhostblk.frontend;

import io.vhostblk.virtio.SplitVirtqueue;
import io.vhostblk.virtio.GuestRam;
import io.vhostblk.virtio.SplitRingDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The queue loop's wait, driven by a step clock (each reading advances it by a fixed amount) and
 * a real split ring with a driver side, so every interleaving of "the guest adds a request" with
 * "the device turns kicks on" is played deterministically.
 */
class AdaptiveWaitTest {
    private static final long STEP = 1_000;

    private GuestRam ram;
    private SplitRingDriver driver;
    private long now;
    private long headerGpa;

    @BeforeEach
    void setUp() throws Exception {
        ram = GuestRam.anonymous(new GuestRam.Region(0, 1 << 20));
        driver = new SplitRingDriver(ram, 16);
        headerGpa = ram.alloc(64, 8);
    }

    @AfterEach
    void tearDown() {
        ram.close();
    }

    private long tick() {
        now += STEP;
        return now;
    }

    /** A Source over a real ring; scripted actions run at chosen points of the wait. */
    private final class RingSource implements AdaptiveWait.Source {
        final SplitVirtqueue queue;
        final boolean eventIdx;
        final List<String> events = new ArrayList<>();
        Runnable afterKicksOn = () -> { };
        Runnable duringSleep = () -> { };
        int readyAfterLooks = -1;
        int looks;
        boolean driverBusy;
        boolean kicksOn = true;
        /** Whether the guest sent a kick the sleeping device would have been woken by. */
        boolean kickSent;

        RingSource(boolean eventIdx) throws Exception {
            this.eventIdx = eventIdx;
            this.queue = driver.deviceQueue(eventIdx, false);
        }

        @Override
        public boolean workReady() {
            looks++;
            return queue.hasAvail() || looks == readyAfterLooks;
        }

        @Override
        public void kicksEnabled(boolean enabled) {
            queue.setKicksEnabled(enabled);
            kicksOn = enabled;
            events.add(enabled ? "kicks on" : "kicks off");
            if (enabled) {
                afterKicksOn.run();
            }
        }

        @Override
        public boolean driverBusy() {
            return driverBusy;
        }

        @Override
        public boolean availPending() {
            return queue.hasAvail();
        }

        @Override
        public void sleep() {
            events.add("sleep");
            duringSleep.run();
        }

        /** The guest adds one request and, as a driver does, kicks only if the device asks. */
        void guestAdds() {
            driver.addChain(SplitRingDriver.Buf.writable(headerGpa, 1));
            driver.publish();
            if (driver.kickNeeded(eventIdx)) {
                kickSent = true;
                events.add("kick");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aRequestAddedJustBeforeKicksComeOnIsFoundByTheRecheckWithoutSleeping(boolean eventIdx) throws Exception {
        AdaptiveWait wait = new AdaptiveWait(new PollWindow(0), this::tick);
        RingSource ring = new RingSource(eventIdx);
        // One request served first, so avail_event (EVENT_IDX) lags behind as in a running queue.
        ring.guestAdds();
        assertEquals(0, ring.queue.popAvail());
        ring.kicksEnabled(false);
        ring.events.clear();
        ring.kickSent = false;
        // The guest publishes while kicks are still off: no kick is sent for it.
        ring.guestAdds();
        assertFalse(ring.kickSent, "kicks were suppressed");
        assertEquals(AdaptiveWait.Outcome.RECHECKED, wait.await(ring));
        assertEquals(List.of("kicks on", "kicks off"), ring.events, "found by the look after kicks on; no sleep");
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aRequestAddedRightAfterKicksComeOnIsKicked(boolean eventIdx) throws Exception {
        AdaptiveWait wait = new AdaptiveWait(new PollWindow(0), this::tick);
        RingSource ring = new RingSource(eventIdx);
        ring.kicksEnabled(false);
        ring.events.clear();
        // At the boundary: kicks are on, the device has not looked yet. Either the device's look
        // sees the request, or the guest must see kicks on and kick: never neither.
        ring.afterKicksOn = ring::guestAdds;
        AdaptiveWait.Outcome outcome = wait.await(ring);
        assertTrue(ring.kickSent, "the guest saw kicks on");
        assertEquals(AdaptiveWait.Outcome.RECHECKED, outcome, "and the device's look saw the request too");
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aRequestAddedWhileAsleepIsKickedAndKicksGoOffOnWaking(boolean eventIdx) throws Exception {
        AdaptiveWait wait = new AdaptiveWait(new PollWindow(0), this::tick);
        RingSource ring = new RingSource(eventIdx);
        ring.duringSleep = ring::guestAdds;
        assertEquals(AdaptiveWait.Outcome.SLEPT, wait.await(ring));
        assertTrue(ring.kickSent, "a sleeping device is kicked");
        assertEquals(List.of("kicks on", "sleep", "kick", "kicks off"), ring.events);
        assertEquals(0, ring.queue.popAvail());
        // While the loop works and polls, kicks stay off: the next request sends none.
        ring.kickSent = false;
        ring.guestAdds();
        assertFalse(ring.kickSent, "suppressed while the loop is awake");
    }

    @Test
    void pollingFindsWorkWithKicksOffAndTheWindowGrowsWhenASleepEndedSoonAfterIt() throws Exception {
        PollWindow window = new PollWindow(50_000);
        AdaptiveWait wait = new AdaptiveWait(window, this::tick);
        RingSource ring = new RingSource(true);
        ring.kicksEnabled(false);
        ring.events.clear();
        // Window 0: sleeps; work came 1 step (1 µs) after the start, within the limit: grow to 4 µs.
        assertEquals(AdaptiveWait.Outcome.SLEPT, wait.await(ring));
        assertEquals(4_000, window.nanos());
        // Window 4 µs: the third look finds work, with kicks never turned on.
        ring.events.clear();
        ring.looks = 0;
        ring.readyAfterLooks = 3;
        assertEquals(AdaptiveWait.Outcome.POLLED, wait.await(ring));
        assertEquals(List.of(), ring.events, "no kick toggling while polling");
        assertEquals(4_000, window.nanos(), "found within the window: unchanged");
        assertEquals(1, wait.polled());
        assertEquals(1, wait.slept());
    }

    @Test
    void anIdleQueueSpinsOnlyItsWindowThenSleeps() throws Exception {
        PollWindow window = new PollWindow(8_000);
        AdaptiveWait wait = new AdaptiveWait(window, this::tick);
        RingSource ring = new RingSource(true);
        window.observe(5_000);
        window.observe(5_000);
        assertEquals(8_000, window.nanos());
        ring.readyAfterLooks = -1;
        // The sleep lasts a long time (the clock jumps 1 s): the window halves each time, then is 0.
        ring.duringSleep = () -> now += 1_000_000_000L;
        assertEquals(AdaptiveWait.Outcome.SLEPT, wait.await(ring));
        assertEquals(8, ring.looks, "looked for one window's worth of steps (8 µs at 1 µs per look)");
        assertEquals(4_000, window.nanos());
        wait.await(ring);
        assertEquals(0, window.nanos());
        int looksBefore = ring.looks;
        wait.await(ring);
        assertEquals(looksBefore, ring.looks, "window 0: straight to sleep, no spinning");
    }

    @Test
    void whileTheDriverHoldsRequestsTheSpinMayLastUpToTheLongerLimit() throws Exception {
        PollWindow window = new PollWindow(8_000, 32_000);
        AdaptiveWait wait = new AdaptiveWait(window, this::tick);
        RingSource ring = new RingSource(true);
        ring.driverBusy = true;
        // A disk answering 20 µs after each wait starts: the window grows past the 8 µs limit of
        // an idle driver, up to where it catches the answer by spinning.
        ring.readyAfterLooks = 20;
        for (int i = 0; i < 4; i++) {
            long start = now;
            ring.looks = 0;
            ring.duringSleep = () -> now = Math.max(now, start + 20_000);
            assertEquals(AdaptiveWait.Outcome.SLEPT, wait.await(ring));
        }
        assertEquals(32_000, window.nanos());
        ring.looks = 0;
        assertEquals(AdaptiveWait.Outcome.POLLED, wait.await(ring), "the answer 20 µs out is caught by spinning");
        // With nothing at the driver, the same window spins only the idle limit before it sleeps.
        ring.driverBusy = false;
        ring.looks = 0;
        ring.readyAfterLooks = -1;
        ring.duringSleep = () -> { };
        assertEquals(AdaptiveWait.Outcome.SLEPT, wait.await(ring));
        assertEquals(8, ring.looks, "8 µs at 1 µs per look");
    }
}
