package io.vhostblk.frontend;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The count of serving queue loops that decides whether a loop may spin longer for its driver. */
class ServingLoopsTest {
    @Test
    void loopsSharingACpuWhileServingTurnTheLongerSpinOffAndAnIdleOneGivesItBack() {
        ServingLoops loops = new ServingLoops(1);
        ServingLoops.Member a = loops.member();
        ServingLoops.Member b = loops.member();
        a.serving();
        assertTrue(loops.cpuEach(), "one serving loop on one CPU");
        b.serving();
        assertFalse(loops.cpuEach(), "two serving loops on one CPU");
        b.idle();
        assertTrue(loops.cpuEach(), "an idle loop does not count");
        b.serving();
        assertFalse(loops.cpuEach());
    }

    @Test
    void aLoopCountsOnceHoweverOftenItReports() {
        ServingLoops loops = new ServingLoops(2);
        ServingLoops.Member a = loops.member();
        a.serving();
        a.serving();
        assertEquals(1, loops.serving());
        a.idle();
        a.idle();
        assertEquals(0, loops.serving(), "going idle twice does not take another loop's place");
        a.serving();
        assertEquals(1, loops.serving());
    }
}
