package io.vhostblk.modules.cache;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleSettings;

import java.nio.file.Path;
import java.util.Locale;

/**
 * The {@code cache} module's settings, checked: {@code cache-file}, {@code size}, {@code mode}, {@code block-size},
 * {@code policy}, {@code writeback-rate}, {@code volume} (docs/cache.md).
 *
 * @param size               bytes of the cache device to use; -1 takes an existing file's (or device's) size
 * @param writebackBytesPerS the most bytes written back per second while the guest is busy
 * @param volume             the identity of what is cached, kept in the cache header
 */
record CacheSettings(Path cacheFile, long size, CacheEngine.Mode mode, int blockSize, long writebackBytesPerS, String volume) {

    static final String[] KNOWN = {"cache-file", "size", "mode", "block-size", "policy", "writeback-rate", "volume"};

    static CacheSettings of(ModuleSettings s, DeviceInfo device) throws ModuleException {
        s.allowOnly(KNOWN);
        String file = s.string("cache-file", null);
        if (file == null || file.isBlank()) {
            throw s.error("cache-file", "required: the local file or block device that holds the cache");
        }
        long size = s.bytes("size", -1, 1 << 20, Long.MAX_VALUE);
        String modeText = s.string("mode", "write-through").trim().toLowerCase(Locale.ROOT);
        CacheEngine.Mode mode = null;
        for (CacheEngine.Mode m : CacheEngine.Mode.values()) {
            if (m.word.equals(modeText)) {
                mode = m;
            }
        }
        if (mode == null) {
            throw s.error("mode", "'" + modeText + "' is not write-through, write-back or write-around");
        }
        long block = s.number("block-size", 4096, 512, 65536);
        if (Long.bitCount(block) != 1) {
            throw s.error("block-size", block + " is not a power of two");
        }
        String policy = s.string("policy", "s3-fifo").trim().toLowerCase(Locale.ROOT);
        if (!policy.equals("s3-fifo")) {
            throw s.error("policy", "'" + policy + "' is not a policy this module has (s3-fifo)");
        }
        long rate = s.number("writeback-rate", 64, 1, 1 << 20);
        String volume = s.string("volume", device.target() == null ? device.vmName() + "/" + device.deviceId() : device.target());
        return new CacheSettings(Path.of(file), size, mode, (int) block, rate << 20, volume);
    }
}
