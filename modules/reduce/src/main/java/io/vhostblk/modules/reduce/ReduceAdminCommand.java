package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.ModuleCommand;

/** Offers {@link ReduceCommand} to the server's command line as {@code vhost-blk reduce ...} (name and summary from its {@code @Command}). */
public final class ReduceAdminCommand implements ModuleCommand {

    @Override
    public Object command() {
        return new ReduceCommand();
    }
}
