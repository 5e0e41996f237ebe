package io.vhostblk.hooks;

/** What a hook decides at the pre-call point. */
public enum HookAction {
    /** Hand the request on to the next hook, then the driver. */
    PASS,
    /** The hook answered the request itself (result set on the request); the driver is not called. */
    COMPLETE
}
