package io.vhostblk.qemutests;

import java.nio.file.Path;

/** A running vhost-user-blk back-end process serving one image on one Unix socket. */
interface StorageBackend extends AutoCloseable {
    /** How a back-end process ended when asked to stop. */
    record Exit(int code, boolean exitedBeforeStop, boolean timedOut) {
        /** A clean shutdown: it was still serving when asked, then exited 0 in time. */
        boolean clean() {
            return !exitedBeforeStop && !timedOut && code == 0;
        }

        @Override
        public String toString() {
            if (timedOut) {
                return "still running " + ProcessBackend.STOP_TIMEOUT.toSeconds() + " s after SIGTERM";
            }
            return (exitedBeforeStop ? "had already exited before SIGTERM, " : "exited after SIGTERM ")
                    + "with status " + code;
        }
    }

    /** The back-end's name in messages. */
    String name();

    /** The vhost-user socket QEMU connects to. */
    Path socket();

    /** Sends SIGTERM and waits (bounded) for the process to exit. */
    Exit stop() throws InterruptedException;

    /** The last lines of the back-end's stdout/stderr. */
    String logTail(int lines);

    /** Kills the process if it is still alive; safe to call at any time. */
    @Override
    void close();
}
