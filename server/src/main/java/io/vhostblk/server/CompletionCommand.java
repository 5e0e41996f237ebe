package io.vhostblk.server;

import picocli.AutoComplete;
import io.vhostblk.hooks.CommandKit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.util.concurrent.Callable;

/**
 * {@code vhost-blk completion}: prints the bash completion script picocli's {@link AutoComplete} derives from
 * the command tree, with the commands of the module jars found where {@code vhost-blk crypt ...} would look.
 * {@code packaging/bash-completion/vhost-blk} is this script for the built-in commands.
 */
@Command(name = "completion", header = "print the bash completion script", description = "print the bash completion script (source it, or install it as /usr/share/bash-"
        + "completion/completions/vhost-blk)")
final class CompletionCommand implements Callable<Integer> {
    @Option(names = "--built-in", description = "only the built-in commands, not those of module jars")
    boolean builtIn;

    @Mixin
    CommandKit.HelpOption help;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        CommandLine tree = VhostBlkMain.commandLine(new PrintStream(PrintStream.nullOutputStream()),
                new PrintStream(PrintStream.nullOutputStream()));
        if (!builtIn) {
            for (var m : ModuleCommands.available()) {
                if (!tree.getSubcommands().containsKey(m.name())) {
                    tree.addSubcommand(m.name(), new CommandLine(m.command()));
                }
            }
        }
        spec.commandLine().getOut().print(script(tree));
        return 0;
    }

    /** The completion script for {@code tree}. */
    static String script(CommandLine tree) {
        return AutoComplete.bash("vhost-blk", tree);
    }
}
