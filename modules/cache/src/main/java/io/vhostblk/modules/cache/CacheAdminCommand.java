package io.vhostblk.modules.cache;

import io.vhostblk.hooks.ModuleCommand;

/** Offers {@link CacheCommand} to the server's command line as {@code vhost-blk cache ...}. */
public final class CacheAdminCommand implements ModuleCommand {

    @Override
    public String name() {
        return "cache";
    }

    @Override
    public String summary() {
        return "cache devices: format, status, flush dirty blocks offline";
    }

    @Override
    public Object command() {
        return new CacheCommand();
    }
}
