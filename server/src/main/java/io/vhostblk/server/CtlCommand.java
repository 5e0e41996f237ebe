package io.vhostblk.server;

import io.vhostblk.hooks.CommandKit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code vhost-blk ctl}: sends one command to a running server's control socket and prints the reply. */
@Command(name = "ctl", header = "send a command to a running server's control socket", sortOptions = false,
        customSynopsis = "vhost-blk ctl --control PATH COMMAND [ARGS...]",
        description = {"Sends one command to the control socket of a running 'vhost-blk serve --control "
                + "PATH' and prints the reply.", ""},
        footer = {"", "Commands:",
                "  devices                          devices, their VM, driver, capacity, chain",
                "  chain DEVICE                     the device's modules (0 = nearest the guest)",
                "  modules [DEVICE]                 modules the (device's) policy makes available",
                "  enable DEVICE MODULE [POSITION]  attach the module at POSITION (0 = nearest the",
                "                                   guest; default: the policy's order)",
                "  disable DEVICE MODULE            take the module out of the chain",
                "  move DEVICE MODULE POSITION      reorder the chain",
                "  counters DEVICE [MODULE]         requests seen, completed, passed on, errors, bytes",
                "  report DEVICE MODULE             the module's own statistics",
                "  device-add SERVE-OPTIONS         serve one more device: --id ID --socket PATH",
                "                                   --disk FILE ... as for 'vhost-blk serve'",
                "  device-remove DEVICE             drain and sync the device, stop serving it",
                "  help                             the server's list of commands",
                "",
                "Exit status: 0 done, 1 the server refused the command (its reason is printed),",
                "2 bad usage, 3 the server could not be reached or answered nonsense."})
final class CtlCommand implements Callable<Integer> {
    /** Exit status when the server answered {@code ok:false}. */
    static final int COMMAND_FAILED = 1;
    /** Exit status when the server could not be reached or its reply was not understood. */
    static final int NO_ANSWER = 3;

    @Option(names = "--control", paramLabel = "PATH",
            description = "the control socket of 'vhost-blk serve --control PATH' (required)")
    Path control;

    @Parameters(paramLabel = "COMMAND", arity = "0..*", description = "the command and its arguments (below)")
    List<String> command = new ArrayList<>();

    @Mixin
    CommandKit.HelpOption help;

    @Spec
    CommandSpec spec;

    private PrintWriter out;
    private PrintWriter err;

    @Override
    public Integer call() throws UsageException {
        if (control == null) {
            throw new UsageException("--control PATH is required (the server's --control socket)");
        }
        if (command.isEmpty()) {
            throw new UsageException("no command given");
        }
        for (String w : command) {
            if (w.isEmpty() || !w.equals(w.replaceAll("\\s", ""))) {
                throw new UsageException("argument '" + w + "' is empty or contains white space");
            }
        }
        out = spec.commandLine().getOut();
        err = spec.commandLine().getErr();
        return run();
    }

    int run() {
        String line = String.join(" ", command);
        String reply;
        try (ControlClient client = ControlClient.connect(control)) {
            reply = client.request(line);
        } catch (IOException e) {
            err.println("vhost-blk ctl: cannot talk to the control socket " + control + ": " + e.getMessage());
            return NO_ANSWER;
        }
        Object parsed;
        try {
            parsed = Json.parse(reply);
        } catch (Json.ParseException e) {
            err.println("vhost-blk ctl: the reply is not JSON (" + e.getMessage() + "): " + ControlProtocol.shorten(reply));
            return NO_ANSWER;
        }
        if (!(parsed instanceof Map<?, ?> map) || !(map.get("ok") instanceof Boolean ok)) {
            err.println("vhost-blk ctl: the reply has no \"ok\" field: " + ControlProtocol.shorten(reply));
            return NO_ANSWER;
        }
        if (!ok) {
            err.println("vhost-blk ctl: " + command.getFirst() + ": " + map.get("error"));
            return COMMAND_FAILED;
        }
        Map<Object, Object> rest = new LinkedHashMap<>(map);
        rest.remove("ok");
        out.println(Json.pretty(rest));
        return 0;
    }
}
