package io.vhostblk.modules.crypt;

import java.nio.file.Path;

/** Every key slot of the image is in use, so no passphrase can be added. */
public final class NoFreeKeySlotException extends LuksException {

    public NoFreeKeySlotException(Path image, int slots) {
        super(image, "key slots", "all " + slots + " are active; remove one first");
    }
}
