package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.nio.file.Path;

/** A LUKS image or key file is unusable; names the file and the field, never key material. */
public class LuksException extends IOException {

    private final Path file;
    private final String field;

    public LuksException(Path file, String field, String problem) {
        super(file + ": " + field + " " + problem);
        this.file = file;
        this.field = field;
    }

    public LuksException(Path file, String field, String problem, Throwable cause) {
        super(file + ": " + field + " " + problem, cause);
        this.file = file;
        this.field = field;
    }

    /** The image or key file concerned. */
    public Path file() {
        return file;
    }

    /** The header field, option or part of the file at fault. */
    public String field() {
        return field;
    }
}
