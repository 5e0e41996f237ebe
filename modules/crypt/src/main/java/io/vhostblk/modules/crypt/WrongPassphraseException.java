package io.vhostblk.modules.crypt;

import java.nio.file.Path;

/** No active key slot of the image opens with the given passphrase or key file; the image was not changed. */
public final class WrongPassphraseException extends LuksException {

    public WrongPassphraseException(Path image) {
        super(image, "key slots", "none opens with the given passphrase or key file (no key slot matched; image unchanged)");
    }
}
