package io.vhostblk.server;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The {@code vhost-blk} command tree: help for every command, usage errors, the packaged completion script. */
class CommandLineTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        out.reset();
        err.reset();
        return VhostBlkMain.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aBuiltInCommandGetsOnlyItsOwnBranchOfTheTreeAndEverythingElseAllOfIt() {
        PrintStream sink = new PrintStream(PrintStream.nullOutputStream());
        assertEquals(List.of("serve"), List.copyOf(VhostBlkMain.commandLine(sink, sink, "serve").getSubcommands().keySet()));
        assertEquals(List.of("ctl"), List.copyOf(VhostBlkMain.commandLine(sink, sink, "ctl").getSubcommands().keySet()));
        List<String> all = List.of("serve", "ctl", "xml", "bench", "completion", "help");
        for (String first : new String[] {null, "help", "--help", "crypt", "srve"}) {
            assertEquals(all, List.copyOf(VhostBlkMain.commandLine(sink, sink, first).getSubcommands().keySet()), first);
        }
        assertTrue(VhostBlkMain.commandLine(sink, sink, "ctl").getSubcommands().get("ctl").isStopAtPositional());
    }

    @Test
    void everyCommandHasHelp() {
        for (String command : List.of("serve", "ctl", "xml", "bench", "completion")) {
            assertEquals(0, run(command, "--help"), err());
            assertTrue(out().contains("Usage: vhost-blk " + command), command + ": " + out());
            assertEquals(0, run("help", command), err());
            assertTrue(out().contains("Usage: vhost-blk " + command), command + ": " + out());
        }
        assertEquals(0, run("serve", "-h"));
        assertTrue(out().contains("--inject=SPEC") && out().contains("--config=FILE") && out().contains("--rbd-timeout=S"),
                out());
    }

    @Test
    void usageErrorsNameTheOptionAndExitTwo() {
        assertEquals(2, run("serve", "--socket", "/tmp/vb-cli.sock", "--driver", "ram", "--size", "1M", "--queues", "99"));
        assertEquals("vhost-blk serve: --queues: 99 is outside 1..64 (see 'vhost-blk serve --help')\n", err());
        assertEquals(2, run("serve", "--socket", "/tmp/vb-cli.sock", "--driver", "tape"));
        assertTrue(err().startsWith("vhost-blk serve: --driver: ") && err().contains("tape"), err());
        assertEquals(2, run("serve", "--config", "/nonexistent.conf", "--queues", "2"));
        assertTrue(err().contains("--queues belongs in a [device ID] section"), err());
        assertEquals(2, run("bench", "--socket", "/tmp/s", "--bs", "4q"));
        assertTrue(err().startsWith("vhost-blk bench: --bs: '4q' is not a size"), err());
        assertEquals(2, run("bench", "--socket", "/tmp/s", "--runtime", "soon"));
        assertTrue(err().startsWith("vhost-blk bench: --runtime: 'soon' is not a duration"), err());
        assertEquals(2, run("xml", "--socket", "/s", "--reconnect", "-1"));
        assertEquals("vhost-blk xml: --reconnect: -1 is outside 0..3600 (see 'vhost-blk xml --help')\n", err());
    }

    @Test
    void aStartFailureIsExitOneWithItsReason() throws Exception {
        Path dir = Files.createTempDirectory("vb-cli");
        try {
            assertEquals(1, run("serve", "--config", dir.resolve("missing.conf").toString()));
            assertTrue(err().startsWith("vhost-blk serve: ") && err().contains("missing.conf"), err());
        } finally {
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void thePackagedCompletionScriptIsTheGeneratedOne() throws Exception {
        assertEquals(0, run("completion", "--built-in"), err());
        String generated = out();
        assertTrue(generated.contains("complete -F _complete_vhost-blk") && generated.contains("--rbd-keyring"),
                "picocli's script covers the options");
        Path packaged = Path.of("..", "packaging", "bash-completion", "vhost-blk");
        assertEquals(Files.readString(packaged), generated, "regenerate " + packaged
                + " with: java -jar server/target/vhost-blk.jar completion --built-in > " + packaged);
        Process bash = new ProcessBuilder("bash", "-n", packaged.toString()).redirectErrorStream(true).start();
        assertTrue(bash.waitFor(30, TimeUnit.SECONDS), "bash -n did not finish");
        assertEquals(0, bash.exitValue(), new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
    }
}
