package io.vhostblk.hooks;

import picocli.CommandLine;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.MissingParameterException;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;
import picocli.CommandLine.UnmatchedArgumentException;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Function;

/**
 * How every {@code vhost-blk} command line is parsed and run (picocli): the server's commands, the load
 * generator's, and module jars' admin commands, which see picocli through their parent class loader.
 *
 * <p>One error style for all: {@code vhost-blk serve: --queues: 99 is outside 1..64 (see 'vhost-blk serve
 * --help')}, naming the option and the value, with the command's {@code exitCodeOnInvalidInput} (2 unless the
 * command says otherwise). A non-option argument is never echoed: it could be a passphrase typed in the wrong
 * place.
 */
public final class CommandKit {
    private CommandKit() {
    }

    /** {@code -h, --help} for a command: {@code @Mixin CommandKit.HelpOption help;}. */
    public static final class HelpOption {
        @Option(names = {"-h", "--help"}, usageHelp = true, description = "this text")
        boolean help;
    }

    /**
     * A command made only of sub-commands (a module's offline tool: {@code vhost-blk crypt}, {@code cache},
     * {@code reduce}): {@code -h, --help}, and run without one, the usage error "a command is needed: a, b or c".
     */
    public abstract static class CommandGroup implements Callable<Integer> {
        @Spec
        protected CommandSpec spec;

        @Mixin
        protected HelpOption help;

        @Override
        public final Integer call() throws CommandUsageException {
            List<String> names = List.copyOf(spec.subcommands().keySet());
            String choice = names.size() < 2 ? String.join("", names)
                    : String.join(", ", names.subList(0, names.size() - 1)) + " or " + names.getLast();
            throw new CommandUsageException("a command is needed: " + choice);
        }
    }

    /**
     * One action of a {@link CommandGroup} (a picocli sub-command): {@code -h, --help}, {@link #out}, and one
     * place that turns what {@link #act()} throws into an exit status, printing {@code "vhost-blk crypt dump:
     * message"}. Subclasses declare their parameters and options and say which failures they expect.
     */
    public abstract static class Action implements Callable<Integer> {
        @Spec
        protected CommandSpec spec;

        @Mixin
        protected HelpOption help;

        /** The command line's standard output, set before {@link #act()} runs. */
        protected PrintWriter out;

        @Override
        public final Integer call() throws CommandUsageException {
            checkArguments();
            out = spec.commandLine().getOut();
            try {
                return act();
            } catch (CommandUsageException e) {
                throw e;
            } catch (Exception e) {
                int status = exitStatusOf(e);
                spec.commandLine().getErr().println(spec.qualifiedName() + ": " + describe(e));
                return status;
            }
        }

        /** Checks made before anything is opened (e.g. refusing a secret given as an argument); none by default. */
        protected void checkArguments() throws CommandUsageException {
        }

        /** Does the action; returns its exit status. */
        protected abstract int act() throws Exception;

        /**
         * The exit status for a failure of {@link #act()} (whose message is then printed); or throws a
         * {@link CommandUsageException} for an operator's mistake, or {@link #unexpected} for a defect.
         */
        protected abstract int exitStatusOf(Exception failure) throws CommandUsageException;

        /** The message printed for a failure; by default its own. */
        protected String describe(Exception failure) {
            return failure.getMessage();
        }

        /** Lets a failure the action does not expect surface as the defect it is (with its stack trace). */
        protected static int unexpected(Exception failure) {
            if (failure instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("unexpected " + failure, failure);
        }
    }

    /**
     * A picocli converter from a parser that throws {@link IllegalArgumentException} with a message saying what is
     * wrong with the value: {@code static final class X extends CommandKit.Converter<Kind> { X() { super(Kind::parse); } }}.
     */
    public abstract static class Converter<T> implements ITypeConverter<T> {
        private final Function<String, T> parser;

        protected Converter(Function<String, T> parser) {
            this.parser = parser;
        }

        @Override
        public final T convert(String value) {
            try {
                return parser.apply(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }

    /** A picocli command line for {@code command} (an object annotated with {@code @Command}), printing to out and err. */
    public static CommandLine commandLine(Object command, PrintStream out, PrintStream err) {
        CommandLine line = new CommandLine(command);
        line.setOut(new PrintWriter(out, true));
        line.setErr(new PrintWriter(err, true));
        configure(line);
        line.setParameterExceptionHandler((ex, args) -> usageError(ex.getCommandLine(), describe(ex)));
        line.setExecutionExceptionHandler((ex, failed, parsed) -> {
            if (ex instanceof CommandUsageException) {
                return usageError(failed, ex.getMessage());
            }
            if (ex instanceof RuntimeException r) {
                throw r; // a defect, not an operator's mistake: let it surface with its stack trace
            }
            failed.getErr().println(failed.getCommandSpec().qualifiedName() + ": " + ex.getMessage());
            return failed.getCommandSpec().exitCodeOnExecutionException();
        });
        return line;
    }

    /** Parses {@code args} into {@code command} and runs it; returns the exit status. */
    public static int execute(Object command, List<String> args, PrintStream out, PrintStream err) {
        return execute(commandLine(command, out, err), args);
    }

    /** Runs an already configured command line; returns the exit status. */
    public static int execute(CommandLine line, List<String> args) {
        int status = line.execute(args.toArray(String[]::new));
        flush(line);
        return status;
    }

    /** A PrintWriter flushes by itself only on println: flush every command's, sub-commands added later included. */
    private static void flush(CommandLine line) {
        line.getOut().flush();
        line.getErr().flush();
        line.getSubcommands().values().forEach(CommandKit::flush);
    }

    /** Parses {@code args} into {@code command}'s fields without running it (for options read from a file or a socket). */
    public static <T> T parse(T command, List<String> args) throws CommandUsageException {
        CommandLine line = new CommandLine(command);
        configure(line);
        try {
            line.parseArgs(args.toArray(String[]::new));
        } catch (ParameterException e) {
            throw new CommandUsageException(describe(e));
        }
        return command;
    }

    /** Fails unless {@code min <= value <= max}, naming the option. */
    public static void checkRange(String option, long value, long min, long max) throws CommandUsageException {
        if (value < min || value > max) {
            throw new CommandUsageException(option + ": " + value + " is outside " + min + ".." + max);
        }
    }

    /** Our wording of picocli's parse errors: the option first, then what is wrong with its value. */
    public static String describe(ParameterException e) {
        if (e instanceof UnmatchedArgumentException u) {
            List<String> unmatched = u.getUnmatched();
            String first = unmatched.isEmpty() ? "" : unmatched.getFirst();
            CommandLine at = u.getCommandLine();
            if (at != null && !at.getSubcommands().isEmpty() && !first.startsWith("-")) {
                // Our commands with sub-commands take no other words: this one names an action that does not exist.
                return "unknown command '" + first + "' (commands: " + String.join(", ", at.getSubcommands().keySet()) + ")";
            }
            return first.startsWith("-") && !first.equals("-") ? "unknown option '" + first + "'"
                    : "unexpected extra argument (" + unmatched.size() + " more than the command takes)";
        }
        if (e instanceof MissingParameterException m && m.getMissing() != null && m.getMissing().size() == 1
                && m.getMissing().getFirst() instanceof OptionSpec o) {
            return o.longestName() + " needs a value";
        }
        ArgSpec spec = e.getArgSpec();
        String name = spec instanceof OptionSpec o ? o.longestName() : spec != null ? spec.paramLabel() : null;
        if (name != null && e.getCause() instanceof TypeConversionException t) {
            return name + ": " + t.getMessage();
        }
        return e.getMessage();
    }

    private static void configure(CommandLine line) {
        line.setExpandAtFiles(false); // "@file" is a file name here, not a list of more arguments
        line.setOverwrittenOptionsAllowed(true); // the last of a repeated option wins, as before picocli
    }

    private static int usageError(CommandLine failed, String message) {
        CommandSpec spec = failed.getCommandSpec();
        failed.getErr().println(spec.qualifiedName() + ": " + message + " (see '" + spec.qualifiedName() + " --help')");
        return spec.exitCodeOnInvalidInput();
    }
}
