package io.vhostblk.frontend;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The queue loops of a process that are serving, against the CPUs the process may use: a loop
 * leaves the count after {@link #IDLE_MILLIS} without work and rejoins at its next work. A loop
 * spins longer for its driver only while every serving loop has a CPU (two spinning loops on one
 * core hold each other's answers for a scheduler slice). The shared count is written only when a
 * loop goes idle or wakes from idleness, never per request.
 */
final class ServingLoops {
    /** A loop with no work for this long stops counting as serving. */
    static final int IDLE_MILLIS = 10;
    /** This process: its CPUs are its affinity at start. */
    static final ServingLoops PROCESS = new ServingLoops(Runtime.getRuntime().availableProcessors());

    private final AtomicInteger serving = new AtomicInteger();
    private final int cpus;

    ServingLoops(int cpus) {
        this.cpus = cpus;
    }

    /** Whether each serving loop has a CPU of its own. */
    boolean cpuEach() {
        return serving.get() <= cpus;
    }

    int serving() {
        return serving.get();
    }

    /** One loop's place in the count; confined to that loop's thread. */
    Member member() {
        return new Member();
    }

    /** One loop's membership: counted from the start, until idle. */
    final class Member {
        private boolean counted;

        /** The loop has work (again). */
        void serving() {
            if (!counted) {
                counted = true;
                serving.incrementAndGet();
            }
        }

        /** The loop had no work for {@link #IDLE_MILLIS}, or stopped. */
        void idle() {
            if (counted) {
                counted = false;
                serving.decrementAndGet();
            }
        }
    }
}
