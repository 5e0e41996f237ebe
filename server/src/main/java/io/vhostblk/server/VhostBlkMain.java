package io.vhostblk.server;

import io.vhostblk.bench.BenchCommand;
import io.vhostblk.hooks.CommandKit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

/** The {@code vhost-blk} command: dispatches to its sub-commands (picocli), and to those of module jars. */
@Command(name = "vhost-blk",
        description = {"A vhost-user-blk back-end: serves disk images to QEMU/KVM guests.", ""},
        subcommands = {ServeCommand.class, CtlCommand.class, XmlCommand.class, BenchCommand.class,
                CompletionCommand.class, HelpCommand.class},
        commandListHeading = "%nCommands:%n",
        footer = {"",
                "Commands in module jars (found in the module directory, see docs/modules.md):",
                "  crypt       LUKS images: format, add-key, remove-key, change-key, dump",
                "  reduce      dedup/compress volumes: format, check, stats",
                "",
                "Run 'vhost-blk COMMAND --help' for a command's options."})
public final class VhostBlkMain implements Callable<Integer> {

    @Mixin
    CommandKit.HelpOption help;

    @Spec
    CommandSpec spec;

    public static void main(String[] args) {
        Logging.configure();
        System.exit(run(Arrays.asList(args), System.out, System.err));
    }

    /** Without a command: the help, and the status of a bad command line. */
    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return spec.exitCodeOnInvalidInput();
    }

    /** Runs a command line; returns the process exit status. */
    public static int run(List<String> args, PrintStream out, PrintStream err) {
        CommandLine line = commandLine(out, err);
        if (!args.isEmpty() && !args.getFirst().startsWith("-") && !line.getSubcommands().containsKey(args.getFirst())) {
            String name = args.getFirst();
            ModuleCommands.Found found;
            try {
                found = ModuleCommands.find(name, args.subList(1, args.size()), err);
            } catch (UsageException e) {
                err.println("vhost-blk: " + e.getMessage());
                return line.getCommandSpec().exitCodeOnInvalidInput();
            }
            line.addSubcommand(name, CommandKit.commandLine(found.command().command(), out, err));
            List<String> rest = new ArrayList<>();
            rest.add(name);
            rest.addAll(found.args());
            return CommandKit.execute(line, rest);
        }
        return CommandKit.execute(line, args);
    }

    /** The command tree of the built-in commands, configured the one {@link CommandKit} way. */
    static CommandLine commandLine(PrintStream out, PrintStream err) {
        CommandLine line = CommandKit.commandLine(new VhostBlkMain(), out, err);
        // ctl passes everything after the control command's name to the server (device-add's serve options too).
        line.getSubcommands().get("ctl").setStopAtPositional(true);
        return line;
    }
}
