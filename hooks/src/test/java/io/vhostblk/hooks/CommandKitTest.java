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
}
