package io.vhostblk.hooks;

import picocli.CommandLine.Command;

/**
 * An administration command a module jar offers to the {@code vhost-blk} command line (listed in
 * {@code META-INF/services/io.vhostblk.hooks.ModuleCommand}), for example {@code vhost-blk crypt format}.
 * The server finds it in the module jar at run time, so it never needs the module at compile time, and runs
 * it through {@link CommandKit} like its own commands.
 */
public interface ModuleCommand {

    /** The word after {@code vhost-blk}, for example {@code "crypt"}: by default the name in the command's {@code @Command}. */
    default String name() {
        return commandAnnotation().name();
    }

    /** One line for {@code vhost-blk --help}: by default the first line of the command's {@code @Command} header. */
    default String summary() {
        String[] header = commandAnnotation().header();
        return header.length == 0 ? name() : header[0];
    }

    /**
     * A new picocli command object ({@code @Command(name = name(), subcommands = ...)}); its sub-commands print
     * through {@code spec.commandLine().getOut()} and {@code getErr()}.
     */
    Object command();

    private Command commandAnnotation() {
        Object command = command();
        Command annotation = command.getClass().getAnnotation(Command.class);
        if (annotation == null) {
            throw new IllegalStateException(command.getClass().getName() + " is not annotated with @Command");
        }
        return annotation;
    }
}
