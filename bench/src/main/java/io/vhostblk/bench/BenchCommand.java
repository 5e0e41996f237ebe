package io.vhostblk.bench;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;

/** {@code vhost-blk bench}: parses the options, runs one {@link BenchJob} and prints its {@link BenchReport}. */
public final class BenchCommand {
    private BenchCommand() {
    }

    public static void main(String[] args) {
        System.exit(run(Arrays.asList(args), System.out, System.err));
    }

    /** Runs {@code vhost-blk bench ARGS}; returns 0 when every request succeeded, 1 when not, 2 for usage errors. */
    public static int run(List<String> args, PrintStream out, PrintStream err) {
        if (args.contains("--help") || args.contains("-h")) {
            out.print(BenchOptions.HELP);
            return 0;
        }
        BenchOptions options;
        try {
            options = BenchOptions.parse(args);
        } catch (BenchUsageException e) {
            err.println("vhost-blk bench: " + e.getMessage());
            return 2;
        }
        try {
            BenchReport report = new BenchJob(options).run();
            out.print(options.json() ? report.toJson() + "\n" : report.toText());
            out.flush();
            if (!report.ok()) {
                err.println("vhost-blk bench: " + report.problem());
                return 1;
            }
            return 0;
        } catch (BenchException e) {
            err.println("vhost-blk bench: " + e.getMessage());
            return 1;
        }
    }
}
