package io.vhostblk.modules.reduce;

import io.vhostblk.hooks.ModuleCommand;

import java.io.PrintStream;
import java.util.List;

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
    public int run(List<String> args, PrintStream out, PrintStream err) {
        return new ReduceCommand(out, err).run(args);
    }
}
