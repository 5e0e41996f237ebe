package io.vhostblk.server;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;

/** The {@code vhost-blk} command: dispatches to its sub-commands. */
public final class VhostBlkMain {
    static final String HELP = """
            Usage: vhost-blk COMMAND [options]

            A vhost-user-blk back-end: serves disk images to QEMU/KVM guests.

            Commands:
              serve     serve a disk image over a vhost-user socket
              ctl       send a command to a running server's control socket
              bench     drive a vhost-user-blk back-end with fio-like jobs (load generator)
              xml       print the libvirt XML that attaches a vhost-blk socket as a disk
              crypt     LUKS images: format, add-key, remove-key, change-key, dump (crypt module jar)
              reduce    dedup/compress volumes: format, check, stats (reduce module jar)
              cache     cache devices: format, status, flush dirty blocks offline (cache module jar)
              help      this text

            Run 'vhost-blk COMMAND --help' for a command's options.
            """;

    private VhostBlkMain() {
    }

    public static void main(String[] args) {
        Logging.configure();
        System.exit(run(Arrays.asList(args), System.out, System.err));
    }

    /** Runs a command line; returns the process exit status. */
    public static int run(List<String> args, PrintStream out, PrintStream err) {
        if (args.isEmpty() || args.get(0).equals("help") || args.get(0).equals("--help") || args.get(0).equals("-h")) {
            out.print(HELP);
            return args.isEmpty() ? 2 : 0;
        }
        List<String> rest = args.subList(1, args.size());
        try {
            return switch (args.get(0)) {
                case "serve" -> {
                    if (rest.contains("--help") || rest.contains("-h")) {
                        out.print(ServeOptions.HELP);
                        out.println();
                        out.print(ServeCommand.CONFIG_HELP);
                        yield 0;
                    }
                    yield ServeCommand.parse(rest, out).run();
                }
                case "bench" -> io.vhostblk.bench.BenchCommand.run(rest, out, err);
                case "ctl" -> {
                    if (rest.contains("--help") || rest.contains("-h")) {
                        out.print(CtlCommand.HELP);
                        yield 0;
                    }
                    yield CtlCommand.parse(rest, out, err).run();
                }
                case "xml" -> {
                    if (rest.contains("--help") || rest.contains("-h")) {
                        out.print(LibvirtXml.HELP);
                        yield 0;
                    }
                    out.print(LibvirtXml.parse(rest).render());
                    yield 0;
                }
                case "crypt" -> ModuleCommands.run("crypt", rest, out, err);
                case "reduce" -> ModuleCommands.run("reduce", rest, out, err);
                case "cache" -> ModuleCommands.run("cache", rest, out, err);
                default -> throw new UsageException("unknown command '" + args.get(0) + "' (see vhost-blk --help)");
            };
        } catch (UsageException e) {
            err.println("vhost-blk: " + e.getMessage());
            return 2;
        } catch (StartupException e) {
            err.println("vhost-blk: " + e.getMessage());
            return 1;
        }
    }
}
