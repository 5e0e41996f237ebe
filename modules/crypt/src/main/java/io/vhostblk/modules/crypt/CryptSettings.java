package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleSettings;

import java.nio.file.Path;
import java.util.Set;

/**
 * The crypt module's policy settings.
 *
 * <ul>
 *   <li>{@code key-file} (or its synonym {@code passphrase-file}): the file whose whole content is the
 *       passphrase, as {@code cryptsetup --key-file} and QEMU's {@code secret,file=} read it. Required.</li>
 *   <li>{@code header-file}: a detached LUKS header (cryptsetup {@code --header}); by default the header is
 *       read from the image the driver serves, which must then be a file.</li>
 *   <li>{@code allow-discard} (default false): whether guest DISCARDs reach the disk. Off, as dm-crypt's default,
 *       because discarded ranges show an observer which parts of the disk are unused; but where dm-crypt fails
 *       the discard, we answer it OK and do nothing: DISCARD is a hint whose data afterwards is unspecified,
 *       and a failed discard makes guests log I/O errors (mkfs, fstrim) for no gain.</li>
 *   <li>{@code bounce-pool-mib} (default 8, 1..1024): bounce memory per queue for writes in flight; writes that do
 *       not fit wait in the queue's large-write lane (see {@link LargeWriteLane}).</li>
 * </ul>
 */
record CryptSettings(Path keyFile, Path headerFile, boolean allowDiscard, long bouncePoolBytes) {

    static final Set<String> KNOWN = Set.of("key-file", "passphrase-file", "header-file", "allow-discard", "bounce-pool-mib");

    static CryptSettings parse(DeviceInfo device, ModuleSettings s) throws ModuleException {
        s.allowOnly(KNOWN.toArray(String[]::new));
        String keyFile = s.string("key-file", null);
        String passphraseFile = s.string("passphrase-file", null);
        if (keyFile != null && passphraseFile != null) {
            throw s.error("passphrase-file", "give key-file or passphrase-file, not both");
        }
        String key = keyFile != null ? keyFile : passphraseFile;
        if (key == null || key.isBlank()) {
            throw s.error("key-file", "is required: the file holding the LUKS passphrase (set key-file = PATH)");
        }
        String header = s.string("header-file", null);
        Path headerPath;
        if (header != null && !header.isBlank()) {
            headerPath = Path.of(header.trim());
        } else if ("file".equals(device.driverKind()) || "io_uring".equals(device.driverKind())) {
            headerPath = Path.of(device.target());
        } else {
            throw s.error("header-file", "is required with the " + device.driverKind() + " driver ('" + device.target()
                    + "' is not an image file to read the LUKS header from)");
        }
        boolean allowDiscard = s.flag("allow-discard", false);
        long poolMib = s.number("bounce-pool-mib", 8, 1, 1024);
        return new CryptSettings(Path.of(key.trim()), headerPath, allowDiscard, poolMib << 20);
    }
}
