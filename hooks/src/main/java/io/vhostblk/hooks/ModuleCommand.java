package io.vhostblk.hooks;

/**
 * An administration command a module jar offers to the {@code vhost-blk} command line (listed in
 * {@code META-INF/services/io.vhostblk.hooks.ModuleCommand}), for example {@code vhost-blk crypt format}.
 * The server finds it in the module jar at run time, so it never needs the module at compile time, and runs
 * it through {@link CommandKit} like its own commands.
 */
public interface ModuleCommand {

    /** The word after {@code vhost-blk}, for example {@code "crypt"}. */
    String name();

    /** One line for {@code vhost-blk --help}. */
    String summary();

    /**
     * A new picocli command object ({@code @Command(name = name(), subcommands = ...)}); its sub-commands print
     * through {@code spec.commandLine().getOut()} and {@code getErr()}.
     */
    Object command();
}
