package io.vhostblk.modules.crypt;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * An image whose master key has been recovered: where the payload is, its sector size, and AES-XTS ciphers
 * keyed with the master key. {@link #close()} zeroes the master key and closes every cipher it handed out.
 *
 * <p>Guest sector {@code s} (512-byte units, as virtio-blk counts) lives at byte
 * {@code payloadOffset() + s * 512} of the image and is encrypted with IV sector {@code s}:
 * {@code cipher.encrypt(s, guestData, bounce, sectorSize())}.
 */
public final class UnlockedVolume implements AutoCloseable {

    private final Path image;
    private final LuksVersion version;
    private final String uuid;
    private final int keySlot;
    private final long payloadOffset;
    private final long payloadSize;
    private final int sectorSize;
    private final byte[] masterKey;
    private final List<XtsAes256> issued = new ArrayList<>();
    private final XtsAes256 cipher;
    private boolean closed;

    UnlockedVolume(Path image, LuksVersion version, String uuid, int keySlot, long payloadOffset, long payloadSize,
                   int sectorSize, byte[] masterKey) {
        this.image = image;
        this.version = version;
        this.uuid = uuid;
        this.keySlot = keySlot;
        this.payloadOffset = payloadOffset;
        this.payloadSize = payloadSize;
        this.sectorSize = sectorSize;
        this.masterKey = masterKey;
        this.cipher = newCipher();
    }

    public Path image() {
        return image;
    }

    public LuksVersion version() {
        return version;
    }

    public String uuid() {
        return uuid;
    }

    /** The key slot the secret opened. */
    public int keySlot() {
        return keySlot;
    }

    /** Byte offset of the payload (the guest's sector 0) in the image. */
    public long payloadOffset() {
        return payloadOffset;
    }

    /** Payload bytes (the guest's disk size): the file after the header, whole encryption sectors only. */
    public long payloadSize() {
        return payloadSize;
    }

    /** Encryption sector size: 512, or 4096 for a LUKS2 image formatted so; I/O must be aligned to it. */
    public int sectorSize() {
        return sectorSize;
    }

    /** A cipher created at unlock; not thread-safe, so one queue worker's. */
    public XtsAes256 cipher() {
        checkOpen();
        return cipher;
    }

    /** A further cipher with the same key for another thread; closed with this volume. */
    public synchronized XtsAes256 newCipher() {
        checkOpen();
        XtsAes256 c = new XtsAes256(masterKey);
        issued.add(c);
        return c;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("volume " + image + " is closed");
        }
    }

    /** Zeroes the master key and closes every cipher handed out; idempotent. */
    @Override
    public synchronized void close() {
        closed = true;
        Arrays.fill(masterKey, (byte) 0);
        for (XtsAes256 c : issued) {
            c.close();
        }
        issued.clear();
    }

    @Override
    public String toString() {
        return "UnlockedVolume[" + image + " " + version + " slot=" + keySlot + " payloadOffset=" + payloadOffset
                + " sectorSize=" + sectorSize + " key redacted]";
    }
}
