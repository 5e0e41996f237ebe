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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.SequencedMap;
import java.util.concurrent.Callable;

/** The {@code vhost-blk} command: dispatches to its sub-commands (picocli), and to those of module jars. */
@Command(name = "vhost-blk",
        description = {"A vhost-user-blk back-end: serves disk images to QEMU/KVM guests.", ""},
        commandListHeading = "%nCommands:%n",
        footer = {"",
                "Commands in module jars (found in the module directory, see docs/modules.md):",
                "  crypt       LUKS images: format, add-key, remove-key, change-key, dump",
                "  reduce      dedup/compress volumes: format, check, stats",
                "  cache       cache devices: format, status, flush dirty blocks offline",
                "",
                "Run 'vhost-blk COMMAND --help' for a command's options."})
public final class VhostBlkMain implements Callable<Integer> {

    /**
     * The built-in commands, in the order the help lists them; classes, which picocli instantiates. (Not
     * constructor references: with them JDK 25.0.3 crashed assembling the AOT cache, a guarantee in
     * ArchiveHeapWriter; picocli's own classes are too old to be linked ahead of time.)
     */
    private static final SequencedMap<String, Class<?>> BUILT_IN = builtIn();

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
        CommandLine line = commandLine(out, err, args.isEmpty() ? null : args.getFirst());
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

    /** The command tree of all built-in commands, configured the one {@link CommandKit} way. */
    static CommandLine commandLine(PrintStream out, PrintStream err) {
        return commandLine(out, err, null);
    }

    /**
     * The command tree for a command line starting with {@code first}: a built-in command other than help gets
     * only its own branch, anything else (help, an option, a module's command, a mistake) all of them. picocli
     * reflects over every command it is given; a server need not pay for the models of bench, xml or ctl.
     */
    static CommandLine commandLine(PrintStream out, PrintStream err, String first) {
        CommandLine line = CommandKit.commandLine(new VhostBlkMain(), out, err);
        Class<?> only = "help".equals(first) ? null : BUILT_IN.get(first);
        BUILT_IN.forEach((name, command) -> {
            if (only == null || only == command) {
                line.addSubcommand(name, CommandKit.commandLine(command, out, err));
            }
        });
        if (line.getSubcommands().containsKey("ctl")) {
            // ctl passes everything after the control command's name to the server (device-add's serve options too).
            line.getSubcommands().get("ctl").setStopAtPositional(true);
        }
        return line;
    }

    private static SequencedMap<String, Class<?>> builtIn() {
        SequencedMap<String, Class<?>> commands = new LinkedHashMap<>();
        commands.put("serve", ServeCommand.class);
        commands.put("ctl", CtlCommand.class);
        commands.put("xml", XmlCommand.class);
        commands.put("bench", BenchCommand.class);
        commands.put("completion", CompletionCommand.class);
        commands.put("help", HelpCommand.class);
        return commands;
    }
}
