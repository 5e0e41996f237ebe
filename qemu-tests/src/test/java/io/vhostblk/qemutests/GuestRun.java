package io.vhostblk.qemutests;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The outcome of one guest boot: its serial console, QEMU's exit, and the host-side SYNCED verdicts. */
record GuestRun(List<String> serial, int exitCode, boolean timedOut, Duration elapsed,
                Map<String, String> hostVerdicts, Path serialLog, Path qemuLog, List<String> command) {
    private static final String MARK = "VBTEST ";

    /** Check names the guest reported as passed. */
    List<String> passed() {
        return reports("PASS");
    }

    /** Whether the guest reached the end of its plan. */
    boolean done() {
        return serial.stream().anyMatch(l -> l.contains(MARK + "DONE"));
    }

    /** The guest's {@code VBTEST FAIL} lines, verbatim. */
    List<String> failureLines() {
        return serial.stream().filter(l -> l.contains(MARK + "FAIL ")).map(l -> l.substring(l.indexOf(MARK))).toList();
    }

    /**
     * Everything wrong with this run against the checks the plan expects, or an empty list: the guest
     * must finish, fail nothing, and pass every expected check.
     */
    List<String> problems(List<String> expectedChecks) {
        List<String> problems = new ArrayList<>();
        if (timedOut) {
            problems.add("QEMU did not finish within the timeout (" + elapsed.toSeconds() + " s) and was killed");
        } else if (exitCode != 0) {
            problems.add("QEMU exited with status " + exitCode);
        }
        if (!done()) {
            problems.add("the guest never printed VBTEST DONE (crashed, hung or did not boot)");
        }
        problems.addAll(failureLines());
        List<String> passed = passed();
        List<String> failures = failureLines();
        List<String> missing = expectedChecks.stream()
                .filter(c -> !passed.contains(c) && failures.stream().noneMatch(l -> l.startsWith(MARK + "FAIL " + c + " ")))
                .toList();
        if (!missing.isEmpty()) {
            problems.add("checks never reported: " + String.join(", ", missing));
        }
        return problems;
    }

    /** Host-side verdicts that failed, as "check: why". */
    List<String> hostProblems() {
        List<String> problems = new ArrayList<>();
        new LinkedHashMap<>(hostVerdicts).forEach((check, verdict) -> {
            if (!verdict.isEmpty()) {
                problems.add(check + ": " + verdict);
            }
        });
        return problems;
    }

    /** The last {@code lines} lines of the serial console, for failure messages. */
    String serialTail(int lines) {
        List<String> tail = serial.subList(Math.max(0, serial.size() - lines), serial.size());
        return "--- serial console (last " + tail.size() + " of " + serial.size() + " lines; full log: " + serialLog
                + ") ---\n" + String.join("\n", tail) + "\n--- QEMU's own output (" + qemuLog + ") ---\n"
                + Logs.tail(qemuLog, 15);
    }

    private List<String> reports(String kind) {
        String prefix = MARK + kind + " ";
        List<String> names = new ArrayList<>();
        for (String line : serial) {
            int at = line.indexOf(prefix);
            if (at >= 0) {
                String rest = line.substring(at + prefix.length()).strip();
                int space = rest.indexOf(' ');
                names.add(space < 0 ? rest : rest.substring(0, space));
            }
        }
        return names;
    }
}
