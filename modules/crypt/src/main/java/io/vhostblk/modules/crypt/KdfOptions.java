package io.vhostblk.modules.crypt;

/**
 * How to derive slot keys for new key slots: PBKDF2-SHA256 (LUKS1, or LUKS2 by choice) or Argon2id (LUKS2's
 * default). A cost of 0 means "benchmark for {@code iterTimeMillis}", as cryptsetup's --iter-time does.
 *
 * @param argon2 Argon2id rather than PBKDF2
 * @param iterations PBKDF2 iterations or Argon2 time cost; 0 to benchmark
 * @param iterTimeMillis target unlock time when benchmarking
 * @param memoryKiB Argon2 memory cost in KiB
 * @param cpus Argon2 lanes
 */
public record KdfOptions(boolean argon2, int iterations, int iterTimeMillis, int memoryKiB, int cpus) {

    /** cryptsetup's default unlock time for PBKDF2 and Argon2. */
    public static final int DEFAULT_ITER_TIME_MS = 2000;
    /** Argon2 memory when not given: 256 MiB, a quarter of cryptsetup's 1 GiB cap, kind to many VMs per host. */
    public static final int DEFAULT_ARGON2_MEMORY_KIB = 256 * 1024;
    /** cryptsetup refuses fewer PBKDF2 iterations than this. */
    static final int MIN_PBKDF2_ITERATIONS = 1000;
    /** cryptsetup refuses an Argon2 time cost below this. */
    static final int MIN_ARGON2_TIME = 4;

    public KdfOptions {
        if (iterations < 0 || iterTimeMillis < 0 || memoryKiB < 0 || cpus < 0) {
            throw new IllegalArgumentException("KDF costs must not be negative");
        }
        if (!argon2 && iterations != 0 && iterations < MIN_PBKDF2_ITERATIONS) {
            throw new IllegalArgumentException("PBKDF2 iterations " + iterations + " below cryptsetup's minimum " + MIN_PBKDF2_ITERATIONS);
        }
        if (argon2 && iterations != 0 && iterations < MIN_ARGON2_TIME) {
            throw new IllegalArgumentException("Argon2 time cost " + iterations + " below cryptsetup's minimum " + MIN_ARGON2_TIME);
        }
        if (argon2 && memoryKiB != 0 && memoryKiB < 8 * Math.max(1, cpus)) {
            throw new IllegalArgumentException("Argon2 memory " + memoryKiB + " KiB is below 8 KiB per lane");
        }
    }

    /** PBKDF2-SHA256 with a fixed iteration count. */
    public static KdfOptions pbkdf2(int iterations) {
        return new KdfOptions(false, iterations, 0, 0, 0);
    }

    /** PBKDF2-SHA256 benchmarked to take about {@code millis} on this machine. */
    public static KdfOptions pbkdf2Time(int millis) {
        return new KdfOptions(false, 0, millis, 0, 0);
    }

    /** Argon2id with fixed costs. */
    public static KdfOptions argon2id(int time, int memoryKiB, int cpus) {
        return new KdfOptions(true, time, 0, memoryKiB, cpus);
    }

    /** The default for a version: PBKDF2 for LUKS1, Argon2id for LUKS2, both benchmarked to 2 s. */
    public static KdfOptions defaults(LuksVersion version) {
        return version == LuksVersion.LUKS1
                ? pbkdf2Time(DEFAULT_ITER_TIME_MS)
                : new KdfOptions(true, 0, DEFAULT_ITER_TIME_MS, DEFAULT_ARGON2_MEMORY_KIB, defaultCpus());
    }

    /** Same costs with a different iteration count or time target; keeps the KDF type. */
    public KdfOptions withIterations(int newIterations) {
        return new KdfOptions(argon2, newIterations, 0, memoryKiB, cpus);
    }

    /** Same KDF benchmarked to a different unlock time. */
    public KdfOptions withIterTime(int millis) {
        return new KdfOptions(argon2, 0, millis, memoryKiB, cpus);
    }

    static int defaultCpus() {
        return Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
    }
}
