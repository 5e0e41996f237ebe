package io.vhostblk.server;

import sun.misc.Signal;

/**
 * Turns SIGTERM and SIGINT into an orderly stop. A JVM shutdown hook would run too, but the
 * process would then exit with 143/130 instead of reporting how the shutdown went.
 */
final class Signals {
    private Signals() {
    }

    static void onTermination(Runnable action) {
        Signal.handle(new Signal("TERM"), s -> action.run());
        Signal.handle(new Signal("INT"), s -> action.run());
    }
}
