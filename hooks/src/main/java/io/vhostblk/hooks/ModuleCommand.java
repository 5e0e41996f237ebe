package io.vhostblk.hooks;

import java.io.PrintStream;
import java.util.List;

/**
 * An administration sub-command a module jar offers to the {@code vhost-blk} command line (listed in
 * {@code META-INF/services/io.vhostblk.hooks.ModuleCommand}), for example {@code vhost-blk crypt format}.
 * The server finds it in the module jar at run time, so it never needs the module at compile time.
 */
public interface ModuleCommand {

    /** The word after {@code vhost-blk}, for example {@code "crypt"}. */
    String name();

    /** One line for {@code vhost-blk --help}. */
    String summary();

    /** Runs with the words after the command name; returns the process exit status. */
    int run(List<String> args, PrintStream out, PrintStream err);
}
