package io.vhostblk.modules.cache;

/** A cache device that cannot be used: not formatted, from another volume, torn, or unreadable. */
final class CacheException extends Exception {
    CacheException(String message) {
        super(message);
    }

    CacheException(String message, Throwable cause) {
        super(message, cause);
    }
}
