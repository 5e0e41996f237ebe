package io.vhostblk.hooks;

/** What a hook decides at the pre-call point. */
public enum HookAction {
    /**
     * Hand the request on, unchanged, to the next hook and then the driver. To send anything else below
     * (another offset, a bounce buffer, another operation) take it over and submit a child request
     * ({@link HookContext#child}).
     */
    PASS,
    /** The hook answered the request itself, with {@link io.vhostblk.drivers.BlockRequest#result(long)} set; the driver is not called. */
    COMPLETE,
    /**
     * The hook keeps the request and will finish it later with {@link HookContext#complete}, for
     * example after work handed to another thread or after its own requests to the layer beneath.
     */
    TAKE_OVER
}
