package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Supplier;

/**
 * Everything a guest test found wrong: each check is evaluated and noted here, and the test fails
 * once at the end with all of them and the logs, so one failure never hides the next.
 */
final class Problems {
    private final List<String> problems = Collections.synchronizedList(new ArrayList<>());

    void add(String problem) {
        problems.add(problem);
    }

    /** Notes {@code prefix + problem} unless {@code problem} is null (a check that held). */
    void addIfAny(String prefix, String problem) {
        if (problem != null) {
            problems.add(prefix + problem);
        }
    }

    /** The guest's own verdicts on {@code plan}: it finished, failed nothing and reported every check. */
    void guest(String prefix, GuestRun run, GuestPlan plan) {
        run.problems(plan.checks()).forEach(p -> problems.add(prefix + p));
    }

    /** The host-side verdicts given at the guest's {@code SYNCED} steps. */
    void hostVerdicts(String prefix, GuestRun run) {
        run.hostProblems().forEach(p -> problems.add(prefix + p));
    }

    /** Stops {@code server} with SIGTERM; a problem unless it was still serving and exited 0 in time. */
    StorageBackend.Exit stop(StorageBackend server) throws InterruptedException {
        return stop(server.name(), server);
    }

    /** As {@link #stop(StorageBackend)}, naming the server {@code who} in the problem. */
    StorageBackend.Exit stop(String who, StorageBackend server) throws InterruptedException {
        StorageBackend.Exit exit = server.stop();
        if (!exit.clean()) {
            problems.add(who + " must exit with status 0 within " + ProcessBackend.STOP_TIMEOUT.toSeconds()
                    + " s of SIGTERM, but it " + exit);
        }
        return exit;
    }

    boolean isEmpty() {
        return problems.isEmpty();
    }

    List<String> list() {
        synchronized (problems) {
            return List.copyOf(problems);
        }
    }

    /** "WHAT: N problem(s)" and one line a problem. */
    String summary(String what) {
        List<String> all = list();
        return what + ": " + all.size() + " problem(s)\n  - " + String.join("\n  - ", all);
    }

    /** Fails the test with {@link #summary} and {@code evidence} (console and log tails) when anything was noted. */
    void failIfAny(String what, Supplier<String> evidence) {
        if (!isEmpty()) {
            fail(summary(what) + "\n" + evidence.get());
        }
    }

    /** The guest's console tail and each server's log tail, for a failure message. */
    static String tails(GuestRun run, int lines, StorageBackend... servers) {
        StringBuilder s = new StringBuilder(run.serialTail(lines));
        for (StorageBackend server : servers) {
            s.append("\n--- ").append(server.name()).append(" log ---\n").append(server.logTail(lines));
        }
        return s.toString();
    }
}
