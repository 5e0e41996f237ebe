package io.vhostblk.compat;

/**
 * Tells the guest that the device's config space changed (the vhost-user layer sends the
 * front-end a config-change message), and says for the operator how that went.
 */
@FunctionalInterface
public interface ConfigNotifier {
    /** Notifies; never throws. Returns what happened, e.g. "guest notified" or why it was not. */
    String configChanged();
}
