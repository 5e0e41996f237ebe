package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.ModuleCommand;

/** Offers {@link ReduceCommand} to the server's command line as {@code vhost-blk reduce ...}. */
public final class ReduceAdminCommand implements ModuleCommand {

    @Override
    public String name() {
        return "reduce";
    }

    @Override
    public String summary() {
        return "dedup/compress volumes: format, check, stats";
    }

    @Override
    public Object command() {
        return new ReduceCommand();
    }
}
