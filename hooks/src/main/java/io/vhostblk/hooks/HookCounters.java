package io.vhostblk.hooks;

/**
 * One module's counters on one queue. Written only by that queue's event loop (plain fields, no
 * atomics on the hot path); read by the control socket, which may see a count a moment old.
 */
public final class HookCounters {
    /** Requests that reached the module's pre-call hook. */
    public long seen;
    /** Requests the module answered itself (COMPLETE, or TAKE_OVER finished). */
    public long completed;
    /** Requests handed on to the layers beneath. */
    public long passed;
    /** Hook exceptions, and requests the module answered itself (COMPLETE, TAKE_OVER) with an error. */
    public long errors;
    /** Bytes of data in the requests seen (READ/WRITE lengths). */
    public long bytes;

    /** Adds this queue's counts to {@code into} (seen, completed, passed, errors, bytes). */
    void addTo(long[] into) {
        into[0] += seen;
        into[1] += completed;
        into[2] += passed;
        into[3] += errors;
        into[4] += bytes;
    }
}
