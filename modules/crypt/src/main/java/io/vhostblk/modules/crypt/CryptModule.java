package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.AbstractHookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

import java.io.IOException;

/**
 * The {@code crypt} module: serves a LUKS1/LUKS2 ({@code aes-xts-plain64}) image to the guest as its plaintext
 * payload, as dm-crypt and QEMU's {@code luks} driver do; settings in {@link CryptSettings}.
 */
public final class CryptModule extends AbstractHookModule {

    private static final System.Logger LOG = System.getLogger(CryptModule.class.getName());
    static final String NAME = "crypt";
    static final String VERSION = "0.1.0";

    public CryptModule() {
        super(NAME, VERSION);
    }

    /**
     * Unlocks the LUKS header with the key file; the image is only read. A wrong passphrase, a missing key file or
     * an unusable header is a {@link ModuleException} naming the device and the files, never the key.
     */
    @Override
    public ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
        CryptSettings cs = CryptSettings.parse(device, settings);
        String who = "module crypt: device " + device.deviceId() + ": ";
        UnlockedVolume volume;
        try (Secret secret = Secret.fromFile(cs.keyFile())) {
            volume = LuksVolume.unlock(cs.headerFile(), secret);
        } catch (WrongPassphraseException e) {
            throw new ModuleException(who + "key file " + cs.keyFile() + " opens no key slot of " + cs.headerFile()
                    + " (wrong passphrase or key file; the image was not changed)");
        } catch (LuksException e) {
            throw new ModuleException(who + e.getMessage());
        } catch (IOException e) {
            throw new ModuleException(who + "cannot read key file " + cs.keyFile() + " or LUKS header " + cs.headerFile() + ": " + e, e);
        }
        CryptInstance instance = new CryptInstance(device, cs, volume);
        if (instance.capacity(device.capacity()) == 0) {
            volume.close();
            throw new ModuleException(who + "the device (" + device.capacity() + " bytes) holds no payload after the LUKS header ("
                    + volume.payloadOffset() + " bytes)");
        }
        LOG.log(System.Logger.Level.INFO, label(device) + ": "
                + volume.version() + " header " + cs.headerFile() + " unlocked with key slot " + volume.keySlot()
                + ", payload at " + volume.payloadOffset() + ", sector size " + volume.sectorSize()
                + ", discards " + (cs.allowDiscard() ? "passed on" : "dropped"));
        return instance;
    }
}
