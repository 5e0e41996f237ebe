package io.vhostblk.bench;

import java.util.Locale;

/** The I/O pattern of a job, named as fio names its {@code --rw} values. */
public enum RwMode {
    READ(false, true, false),
    WRITE(false, false, true),
    RANDREAD(true, true, false),
    RANDWRITE(true, false, true),
    RANDRW(true, true, true);

    private final boolean random;
    private final boolean reads;
    private final boolean writes;

    RwMode(boolean random, boolean reads, boolean writes) {
        this.random = random;
        this.reads = reads;
        this.writes = writes;
    }

    /** Whether offsets are drawn at random (else each queue streams sequentially). */
    public boolean random() {
        return random;
    }

    /** Whether the job issues reads. */
    public boolean reads() {
        return reads;
    }

    /** Whether the job issues writes. */
    public boolean writes() {
        return writes;
    }

    /** The fio spelling, e.g. {@code randread}. */
    public String fioName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses a fio spelling; throws with the accepted values otherwise. */
    public static RwMode parse(String s) {
        for (RwMode m : values()) {
            if (m.fioName().equals(s)) {
                return m;
            }
        }
        throw new IllegalArgumentException("'" + s + "' is not one of read, write, randread, randwrite, randrw");
    }
}

