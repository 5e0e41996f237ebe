package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.PerQueueInstance;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The crypt module attached to one device: the unlocked LUKS volume (master key held until {@link #close()}),
 * a {@link CryptHook} with its own cipher per queue, and the guest-visible size (the payload).
 */
final class CryptInstance extends PerQueueInstance<CryptHook> {

    private static final System.Logger LOG = System.getLogger(CryptInstance.class.getName());

    private final DeviceInfo device;
    private final CryptSettings settings;
    private final UnlockedVolume volume;

    CryptInstance(DeviceInfo device, CryptSettings settings, UnlockedVolume volume) {
        this.device = device;
        this.settings = settings;
        this.volume = volume;
    }

    @Override
    protected CryptHook newQueueHook(HookContext context) {
        String label = device.label() + " queue=" + context.queueIndex();
        return new CryptHook(label, context, volume.newCipher(), volume.payloadOffset(), volume.sectorSize(),
                settings.allowDiscard(), settings.bouncePoolBytes());
    }

    /** The encryption sector: a 4096-byte LUKS2 volume cannot take a 512-byte write. */
    @Override
    public int logicalBlockSize() {
        return volume.sectorSize();
    }

    @Override
    public boolean failClosed() {
        // Without this module the guest would read ciphertext and write plaintext over the header.
        return true;
    }

    /** The payload: what follows the header, in whole encryption sectors. */
    @Override
    public long capacity(long capacityBelow) {
        long payload = Math.max(0, capacityBelow - volume.payloadOffset());
        return payload - payload % volume.sectorSize();
    }

    /** Layout and counters; never key material. */
    @Override
    public Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("header", settings.headerFile().toString());
        m.put("luks", volume.version().toString());
        m.put("uuid", volume.uuid());
        m.put("key-slot", volume.keySlot());
        m.put("cipher", "aes-xts-plain64");
        m.put("payload-offset", volume.payloadOffset());
        m.put("sector-size", volume.sectorSize());
        m.put("allow-discard", settings.allowDiscard());
        m.put("reads-decrypted", sum(h -> h.readsDecrypted));
        m.put("bytes-decrypted", sum(h -> h.bytesDecrypted));
        m.put("writes-encrypted", sum(h -> h.writesEncrypted));
        m.put("bytes-encrypted", sum(h -> h.bytesEncrypted));
        m.put("large-writes", sum(CryptHook::laneServed));
        m.put("discards-dropped", sum(h -> h.discardsDropped));
        m.put("refused-misaligned", sum(h -> h.refused));
        m.put("errors", sum(h -> h.errors));
        m.put("bounce-chunks-free", sum(CryptHook::freeChunks));
        m.put("bounce-chunks", sum(CryptHook::poolChunks));
        return m;
    }

    /** Wipes the master key, every queue's cipher, scratch and bounce memory. */
    @Override
    public void close() {
        for (CryptHook h : queues()) {
            h.close();
        }
        volume.close();
        LOG.log(System.Logger.Level.INFO, device.label() + " module=crypt: detached, key material wiped");
    }

    @Override
    public String toString() {
        return "CryptInstance[" + device.deviceId() + " " + volume + "]";
    }
}
