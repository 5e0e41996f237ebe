package io.vhostblk.modules.crypt;

import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The crypt module attached to one device: the unlocked LUKS volume (master key held until {@link #close()}),
 * a {@link CryptHook} with its own cipher per queue, and the guest-visible size (the payload).
 */
final class CryptInstance implements ModuleInstance {

    private static final System.Logger LOG = System.getLogger(CryptInstance.class.getName());

    private final DeviceInfo device;
    private final CryptSettings settings;
    private final UnlockedVolume volume;
    private final List<CryptHook> hooks = new CopyOnWriteArrayList<>();

    CryptInstance(DeviceInfo device, CryptSettings settings, UnlockedVolume volume) {
        this.device = device;
        this.settings = settings;
        this.volume = volume;
    }

    @Override
    public BlockHook openQueue(HookContext context) {
        String label = "vm=" + device.vmName() + " device=" + device.deviceId() + " queue=" + context.queueIndex();
        CryptHook hook = new CryptHook(label, context, volume.newCipher(), volume.payloadOffset(), volume.sectorSize(),
                settings.allowDiscard(), settings.bouncePoolBytes());
        hooks.add(hook);
        return hook;
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
        long reads = 0, writes = 0, rb = 0, wb = 0, dropped = 0, refused = 0, errors = 0, lane = 0, free = 0, chunks = 0;
        for (CryptHook h : hooks) {
            reads += h.readsDecrypted;
            writes += h.writesEncrypted;
            rb += h.bytesDecrypted;
            wb += h.bytesEncrypted;
            dropped += h.discardsDropped;
            refused += h.refused;
            errors += h.errors;
            lane += h.laneServed();
            free += h.freeChunks();
            chunks += h.poolChunks();
        }
        m.put("reads-decrypted", reads);
        m.put("bytes-decrypted", rb);
        m.put("writes-encrypted", writes);
        m.put("bytes-encrypted", wb);
        m.put("large-writes", lane);
        m.put("discards-dropped", dropped);
        m.put("refused-misaligned", refused);
        m.put("errors", errors);
        m.put("bounce-chunks-free", free);
        m.put("bounce-chunks", chunks);
        return m;
    }

    /** Wipes the master key, every queue's cipher, scratch and bounce memory. */
    @Override
    public void close() {
        for (CryptHook h : hooks) {
            h.close();
        }
        hooks.clear();
        volume.close();
        LOG.log(System.Logger.Level.INFO, "vm=" + device.vmName() + " device=" + device.deviceId()
                + " module=crypt: detached, key material wiped");
    }

    @Override
    public String toString() {
        return "CryptInstance[" + device.deviceId() + " " + volume + "]";
    }
}
