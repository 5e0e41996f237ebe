package io.vhostblk.hooks;

import org.junit.jupiter.api.Test;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Callable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one way command lines are parsed: sizes, error wording, exit statuses. */
class CommandKitTest {

    @Command(name = "demo", exitCodeOnInvalidInput = 7)
    static final class Demo implements Callable<Integer> {
        @Option(names = "--size", converter = ByteSizes.Converter.class)
        long size;

        @Option(names = "--count")
        int count;

        @Option(names = "--name")
        String name;

        @Parameters(arity = "0..1")
        String image;

        @Override
        public Integer call() throws CommandUsageException {
            CommandKit.checkRange("--count", count, 0, 10);
            if (name != null && name.equals("fail")) {
                throw new CommandUsageException("--name: 'fail' is refused");
            }
            return 0;
        }
    }

    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        err.reset();
        return CommandKit.execute(new Demo(), List.of(args), new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void sizesTakeBinarySuffixes() {
        assertEquals(16L << 20, ByteSizes.parse("16M"));
        assertEquals(1L << 30, ByteSizes.parse("1G"));
        assertEquals(4096, ByteSizes.parse("4096"));
        assertEquals(2L << 40, ByteSizes.parse("2T"));
        assertEquals(512L << 10, ByteSizes.parse("512KB"));
        assertEquals(4L << 10, ByteSizes.parse("4kib"));
        assertEquals("'ten' is not a size (examples: 1048576, 512M, 8G)",
                assertThrows(IllegalArgumentException.class, () -> ByteSizes.parse("ten")).getMessage());
        assertThrows(IllegalArgumentException.class, () -> ByteSizes.parse("0"));
        assertThrows(IllegalArgumentException.class, () -> ByteSizes.parse("9000000T"));
        assertEquals("64K", ByteSizes.format(65536));
        assertEquals("1000", ByteSizes.format(1000));
    }

    @Test
    void errorsNameTheOptionAndTheValueWithTheCommandsExitStatus() {
        assertEquals(0, run("--size", "4k", "--count", "3"), err());
        assertEquals(7, run("--size", "lots"));
        assertEquals("demo: --size: 'lots' is not a size (examples: 1048576, 512M, 8G) (see 'demo --help')\n", err());
        assertEquals(7, run("--count"));
        assertEquals("demo: --count needs a value (see 'demo --help')\n", err());
        assertEquals(7, run("--count", "x"));
        assertTrue(err().startsWith("demo: --count: 'x'"), err());
        assertEquals(7, run("--count", "11"));
        assertEquals("demo: --count: 11 is outside 0..10 (see 'demo --help')\n", err());
        assertEquals(7, run("--frobnicate"));
        assertEquals("demo: unknown option '--frobnicate' (see 'demo --help')\n", err());
        assertEquals(7, run("--name", "fail"));
        assertEquals("demo: --name: 'fail' is refused (see 'demo --help')\n", err());
    }

    @Test
    void anUnexpectedWordIsNotEchoedItMayBeASecret() {
        assertEquals(7, run("image", "hunter2"));
        assertFalse(err().contains("hunter2"), err());
        assertTrue(err().contains("unexpected extra argument"), err());
    }

    @Test
    void atFilesAreFileNamesAndTheLastRepeatedOptionWins() throws CommandUsageException {
        Demo d = CommandKit.parse(new Demo(), List.of("@args", "--count", "1", "--count", "2"));
        assertEquals("@args", d.image);
        assertEquals(2, d.count);
        assertEquals("--size needs a value", assertThrows(CommandUsageException.class,
                () -> CommandKit.parse(new Demo(), List.of("--size"))).getMessage());
    }

    @Command(name = "tool", header = {"a tool: one, two, three", "second line"}, subcommands = {Tool.One.class, Tool.Two.class, Tool.Three.class})
    static final class Tool extends CommandKit.CommandGroup {
        /** Exit status 5 for an I/O failure; an IllegalArgumentException is the operator's mistake; anything else a defect. */
        abstract static class Act extends CommandKit.Action {
            @Parameters(index = "0")
            String what;

            @Override
            protected int act() throws Exception {
                switch (what) {
                    case "io" -> throw new java.io.IOException("disk on fire");
                    case "arg" -> throw new IllegalArgumentException("--what: 'arg' is refused");
                    case "bug" -> throw new IllegalStateException("a defect");
                    default -> out.println("did " + what);
                }
                return 0;
            }

            @Override
            protected int exitStatusOf(Exception failure) throws CommandUsageException {
                if (failure instanceof IllegalArgumentException) {
                    throw new CommandUsageException(failure.getMessage());
                }
                return failure instanceof java.io.IOException ? 5 : unexpected(failure);
            }
        }

        @Command(name = "one")
        static final class One extends Act {
        }

        @Command(name = "two")
        static final class Two extends Act {
        }

        @Command(name = "three")
        static final class Three extends Act {
        }
    }

    private int tool(ByteArrayOutputStream out, String... args) {
        err.reset();
        return CommandKit.execute(new Tool(), List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @Test
    void aCommandGroupNamesItsCommandsAndItsActionsMapFailuresToExitStatuses() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertEquals(2, tool(out));
        assertEquals("tool: a command is needed: one, two or three (see 'tool --help')", err().strip());
        assertEquals(0, tool(out, "two", "work"));
        assertEquals("did work", out.toString(StandardCharsets.UTF_8).strip());
        assertEquals(5, tool(out, "one", "io"));
        assertEquals("tool one: disk on fire", err().strip());
        assertEquals(2, tool(out, "three", "arg"));
        assertEquals("tool three: --what: 'arg' is refused (see 'tool three --help')", err().strip());
        // A defect is not dressed as an operator's error: it surfaces with its stack trace.
        assertEquals(1, tool(out, "one", "bug"));
        assertTrue(err().contains("java.lang.IllegalStateException: a defect") && err().contains("\tat "), err());
        assertEquals(0, tool(out, "one", "--help"));
    }

    @Test
    void aModuleCommandTakesItsNameAndSummaryFromItsCommand() {
        ModuleCommand m = () -> new Tool();
        assertEquals("tool", m.name());
        assertEquals("a tool: one, two, three", m.summary());
        ModuleCommand bare = () -> new Demo();
        assertEquals("demo", bare.summary(), "no header: the name");
        ModuleCommand notACommand = () -> "text";
        assertThrows(IllegalStateException.class, notACommand::name);
    }
}
