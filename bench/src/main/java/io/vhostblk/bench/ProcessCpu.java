package io.vhostblk.bench;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** CPU time a process has used (user + system, all its threads) from {@code /proc/PID/stat}, in nanoseconds. */
public final class ProcessCpu {
    private static final System.Logger LOG = System.getLogger(ProcessCpu.class.getName());
    private static final long DEFAULT_CLK_TCK = 100;
    private static volatile long clockTicks;

    private final long pid;
    private final Path stat;

    private ProcessCpu(long pid) {
        this.pid = pid;
        this.stat = Path.of("/proc", Long.toString(pid), "stat");
    }

    /** The process pid; fails when it does not exist. */
    public static ProcessCpu of(long pid) throws BenchException {
        ProcessCpu p = new ProcessCpu(pid);
        p.nanos();
        return p;
    }

    /** This JVM. */
    public static ProcessCpu self() throws BenchException {
        return of(ProcessHandle.current().pid());
    }

    public long pid() {
        return pid;
    }

    /** utime + stime so far, in nanoseconds (resolution one clock tick, usually 10 ms). */
    public long nanos() throws BenchException {
        String line;
        try {
            line = Files.readString(stat, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new BenchException("cannot read " + stat + " (has process " + pid + " exited?)", e);
        }
        return ticks(line) * (TimeUnit.SECONDS.toNanos(1) / clockTicksPerSecond());
    }

    /** utime + stime from a /proc/PID/stat line (fields 14 and 15, counted after the parenthesised name). */
    static long ticks(String statLine) throws BenchException {
        int close = statLine.lastIndexOf(')');
        if (close < 0) {
            throw new BenchException("unexpected /proc stat line: " + statLine);
        }
        String[] f = statLine.substring(close + 1).trim().split("\\s+");
        // f[0] is field 3 (state), so field n is f[n - 3].
        if (f.length < 13) {
            throw new BenchException("unexpected /proc stat line: " + statLine);
        }
        try {
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (NumberFormatException e) {
            throw new BenchException("unexpected /proc stat line: " + statLine, e);
        }
    }

    /** The kernel's USER_HZ from {@code getconf CLK_TCK}; 100 (with a warning) when that cannot be run. */
    static long clockTicksPerSecond() {
        long t = clockTicks;
        if (t == 0) {
            t = askGetconf();
            clockTicks = t;
        }
        return t;
    }

    private static long askGetconf() {
        try {
            Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
            if (p.waitFor(5, TimeUnit.SECONDS) && p.exitValue() == 0) {
                long v = Long.parseLong(out);
                if (v > 0 && TimeUnit.SECONDS.toNanos(1) % v == 0) {
                    return v;
                }
            }
            p.destroyForcibly();
            LOG.log(Level.WARNING, "getconf CLK_TCK printed ''{0}''; assuming {1} ticks per second", out, DEFAULT_CLK_TCK);
        } catch (IOException | NumberFormatException e) {
            LOG.log(Level.WARNING, "cannot run getconf CLK_TCK (" + e + "); assuming " + DEFAULT_CLK_TCK + " ticks per second");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            LOG.log(Level.WARNING, "interrupted running getconf CLK_TCK; assuming " + DEFAULT_CLK_TCK + " ticks per second");
        }
        return DEFAULT_CLK_TCK;
    }
}
