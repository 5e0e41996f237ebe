package io.vhostblk.modules.reduce;

/** The compression a packed block's fragments use; the id is stored on disk. */
public enum Codec {
    LZ4(1),
    ZSTD(2);

    final int id;

    Codec(int id) {
        this.id = id;
    }

    static Codec of(int id) {
        for (Codec c : values()) {
            if (c.id == id) {
                return c;
            }
        }
        throw new IllegalArgumentException("unknown codec id " + id);
    }

    /** Parses {@code lz4} or {@code zstd}. */
    public static Codec parse(String name) {
        return switch (name) {
            case "lz4" -> LZ4;
            case "zstd" -> ZSTD;
            default -> throw new IllegalArgumentException("unknown codec \"" + name + "\" (lz4 or zstd)");
        };
    }
}
