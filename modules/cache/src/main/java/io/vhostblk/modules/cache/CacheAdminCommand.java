package io.vhostblk.modules.cache;

import io.vhostblk.hooks.ModuleCommand;

/** Offers {@link CacheCommand} to the server's command line as {@code vhost-blk cache ...} (name and summary from its {@code @Command}). */
public final class CacheAdminCommand implements ModuleCommand {

    @Override
    public Object command() {
        return new CacheCommand();
    }
}
