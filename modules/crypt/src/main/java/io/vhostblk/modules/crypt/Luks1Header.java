package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The LUKS1 partition header (LUKS1 On-Disk Format Specification 1.2.3, figure 1): 592 big-endian bytes at
 * offset 0, followed by 8 key-material areas and the payload. We accept aes / xts-plain64 with a 64-byte key,
 * the layout cryptsetup and QEMU produce for aes-xts-plain64 with 512-bit keys.
 */
final class Luks1Header implements LuksHeader {

    static final int SIZE = 592;
    static final int SLOTS = 8;
    static final int ACTIVE = 0x00AC71F3;
    static final int DISABLED = 0x0000DEAD;
    static final int DIGEST_BYTES = 20;
    static final int SALT_BYTES = 32;
    /** cryptsetup aligns key-material areas to 4096 bytes (8 sectors) and the payload to 1 MiB. */
    static final int AREA_ALIGN_SECTORS = 8;
    static final int PAYLOAD_ALIGN_SECTORS = 2048;

    // Field offsets, from the specification's figure 1 and the key-slot table (48 bytes per slot at 208).
    private static final int OFF_VERSION = 6;
    private static final int OFF_CIPHER_NAME = 8;
    private static final int OFF_CIPHER_MODE = 40;
    private static final int OFF_HASH_SPEC = 72;
    private static final int OFF_PAYLOAD = 104;
    private static final int OFF_KEY_BYTES = 108;
    private static final int OFF_MK_DIGEST = 112;
    private static final int OFF_MK_SALT = 132;
    private static final int OFF_MK_ITER = 164;
    private static final int OFF_UUID = 168;
    private static final int OFF_SLOTS = 208;
    private static final int SLOT_SIZE = 48;

    private final String uuid;
    private final HashSpec hash;
    private final int payloadSectors;
    private final int keyBytes;
    private final MasterKeyDigest mkDigest;
    private final KeySlot[] slots;

    private Luks1Header(String uuid, HashSpec hash, int payloadSectors, int keyBytes, MasterKeyDigest mkDigest, KeySlot[] slots) {
        this.uuid = uuid;
        this.hash = hash;
        this.payloadSectors = payloadSectors;
        this.keyBytes = keyBytes;
        this.mkDigest = mkDigest;
        this.slots = slots;
    }

    /** Sectors one slot's split material occupies, before alignment. */
    static int materialSectors(int keyBytes, int stripes) {
        return (keyBytes * stripes + 511) / 512;
    }

    /** A new header with every slot disabled, laid out as cryptsetup does (areas from sector 8, payload at 1 MiB alignment). */
    static Luks1Header create(String uuid, HashSpec hash, int keyBytes, MasterKeyDigest mkDigest) {
        int areaSectors = roundUp(materialSectors(keyBytes, KeySlot.STRIPES), AREA_ALIGN_SECTORS);
        KeySlot[] slots = new KeySlot[SLOTS];
        int sector = AREA_ALIGN_SECTORS;
        for (int i = 0; i < SLOTS; i++) {
            slots[i] = new KeySlot(i, false, new KdfParams.Pbkdf2Params(hash, 0, new byte[SALT_BYTES]),
                    sector * 512L, areaSectors * 512L, KeySlot.STRIPES, keyBytes, hash);
            sector += areaSectors;
        }
        int payload = roundUp(sector, PAYLOAD_ALIGN_SECTORS);
        return new Luks1Header(uuid, hash, payload, keyBytes, mkDigest, slots);
    }

    private static int roundUp(int value, int align) {
        return (value + align - 1) / align * align;
    }

    static Luks1Header read(Path image, FileChannel channel) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(SIZE);
        LuksHeader.readFully(image, channel, b, 0, "LUKS1 header");
        int version = b.getShort(OFF_VERSION) & 0xffff;
        if (version != 1) {
            throw new LuksException(image, "version", "is " + version + ", expected 1");
        }
        String cipherName = LuksHeader.cString(b, OFF_CIPHER_NAME, 32);
        if (!cipherName.equals("aes")) {
            throw new LuksException(image, "cipher-name", "is \"" + cipherName + "\"; only \"aes\" is supported");
        }
        String cipherMode = LuksHeader.cString(b, OFF_CIPHER_MODE, 32);
        if (!cipherMode.equals("xts-plain64")) {
            throw new LuksException(image, "cipher-mode", "is \"" + cipherMode + "\"; only \"xts-plain64\" is supported");
        }
        String hashName = LuksHeader.cString(b, OFF_HASH_SPEC, 32);
        HashSpec hash = HashSpec.byLuksName(hashName);
        if (hash == null) {
            throw new LuksException(image, "hash-spec", "is \"" + hashName + "\"; supported: sha1, sha256, sha512");
        }
        long payload = Integer.toUnsignedLong(b.getInt(OFF_PAYLOAD));
        int keyBytes = b.getInt(OFF_KEY_BYTES);
        if (keyBytes != XtsAes256.KEY_BYTES) {
            throw new LuksException(image, "key-bytes", "is " + keyBytes + "; aes-xts-plain64 here needs 64 (AES-256)");
        }
        byte[] digest = new byte[DIGEST_BYTES];
        b.get(OFF_MK_DIGEST, digest);
        byte[] digestSalt = new byte[SALT_BYTES];
        b.get(OFF_MK_SALT, digestSalt);
        int digestIter = b.getInt(OFF_MK_ITER);
        if (digestIter <= 0) {
            throw new LuksException(image, "mk-digest-iter", "is " + Integer.toUnsignedString(digestIter) + ", must be positive");
        }
        String uuid = LuksHeader.cString(b, OFF_UUID, 40);
        KeySlot[] slots = new KeySlot[SLOTS];
        for (int i = 0; i < SLOTS; i++) {
            int o = OFF_SLOTS + i * SLOT_SIZE;
            int active = b.getInt(o);
            String field = "key slot " + i;
            if (active != ACTIVE && active != DISABLED) {
                throw new LuksException(image, field + " active", String.format("is 0x%08x, neither 0x00AC71F3 nor 0x0000DEAD", active));
            }
            int iterations = b.getInt(o + 4);
            byte[] salt = new byte[SALT_BYTES];
            b.get(o + 8, salt);
            long areaSector = Integer.toUnsignedLong(b.getInt(o + 40));
            int stripes = b.getInt(o + 44);
            if (active == ACTIVE) {
                if (iterations <= 0) {
                    throw new LuksException(image, field + " iterations", "is " + Integer.toUnsignedString(iterations) + ", must be positive");
                }
                if (stripes <= 0 || stripes > 100_000) {
                    throw new LuksException(image, field + " stripes", "is " + Integer.toUnsignedString(stripes) + ", expected 4000");
                }
                long end = (areaSector + materialSectors(keyBytes, stripes));
                if (areaSector == 0 || end > payload && payload != 0) {
                    throw new LuksException(image, field + " key-material-offset",
                            "sector " + areaSector + " (+" + materialSectors(keyBytes, stripes) + ") overlaps the header or the payload at sector " + payload);
                }
            }
            int safeStripes = stripes > 0 && stripes <= 100_000 ? stripes : KeySlot.STRIPES;
            slots[i] = new KeySlot(i, active == ACTIVE, new KdfParams.Pbkdf2Params(hash, iterations, salt),
                    areaSector * 512L, materialSectors(keyBytes, safeStripes) * 512L, safeStripes, keyBytes, hash);
        }
        if (payload == 0 || payload > Integer.MAX_VALUE) {
            // payload-offset 0 means a detached header, which vhost-blk does not serve.
            throw new LuksException(image, "payload-offset", "is " + payload + "; a header inside the image (non-zero offset) is required");
        }
        return new Luks1Header(uuid, hash, (int) payload, keyBytes, new MasterKeyDigest(hash, digestIter, digestSalt, digest), slots);
    }

    /** The 592 header bytes. */
    ByteBuffer toBytes() {
        ByteBuffer b = ByteBuffer.allocate(SIZE);
        b.put(0, MAGIC);
        b.putShort(OFF_VERSION, (short) 1);
        LuksHeader.putCString(b, OFF_CIPHER_NAME, 32, "aes");
        LuksHeader.putCString(b, OFF_CIPHER_MODE, 32, "xts-plain64");
        LuksHeader.putCString(b, OFF_HASH_SPEC, 32, hash.luksName);
        b.putInt(OFF_PAYLOAD, payloadSectors);
        b.putInt(OFF_KEY_BYTES, keyBytes);
        b.put(OFF_MK_DIGEST, mkDigest.digest());
        b.put(OFF_MK_SALT, mkDigest.salt());
        b.putInt(OFF_MK_ITER, mkDigest.iterations());
        LuksHeader.putCString(b, OFF_UUID, 40, uuid);
        for (KeySlot s : slots) {
            int o = OFF_SLOTS + s.index() * SLOT_SIZE;
            KdfParams.Pbkdf2Params kdf = (KdfParams.Pbkdf2Params) s.kdf();
            b.putInt(o, s.active() ? ACTIVE : DISABLED);
            // cryptsetup clears iterations and salt of a disabled slot; so do we.
            b.putInt(o + 4, s.active() ? kdf.iterations() : 0);
            b.put(o + 8, s.active() ? kdf.salt() : new byte[SALT_BYTES]);
            b.putInt(o + 40, (int) (s.areaOffset() / 512));
            b.putInt(o + 44, s.stripes());
        }
        return b;
    }

    @Override
    public LuksVersion version() {
        return LuksVersion.LUKS1;
    }

    @Override
    public String uuid() {
        return uuid;
    }

    @Override
    public long payloadOffset() {
        return payloadSectors * 512L;
    }

    @Override
    public int sectorSize() {
        return 512;
    }

    @Override
    public int keyBytes() {
        return keyBytes;
    }

    HashSpec hash() {
        return hash;
    }

    MasterKeyDigest mkDigest() {
        return mkDigest;
    }

    @Override
    public List<KeySlot> slots() {
        return List.of(slots);
    }

    @Override
    public int maxSlots() {
        return SLOTS;
    }

    @Override
    public MasterKeyDigest digestFor(KeySlot slot) {
        return mkDigest;
    }

    @Override
    public KeySlot allocateSlot(KdfParams kdf) {
        if (!(kdf instanceof KdfParams.Pbkdf2Params)) {
            throw new IllegalArgumentException("LUKS1 key slots use PBKDF2 only");
        }
        for (KeySlot s : slots) {
            if (!s.active()) {
                return new KeySlot(s.index(), false, kdf, s.areaOffset(), s.areaSize(), KeySlot.STRIPES, keyBytes, hash);
            }
        }
        return null;
    }

    @Override
    public void activate(KeySlot slot) {
        slots[slot.index()] = new KeySlot(slot.index(), true, slot.kdf(), slot.areaOffset(), slot.areaSize(), slot.stripes(), slot.keyBytes(), slot.afHash());
    }

    @Override
    public void deactivate(int index) {
        slots[index] = slots[index].disabled();
    }

    @Override
    public void write(FileChannel channel) throws IOException {
        // 592 bytes inside the first 4 KiB: a single-sector write, as atomic as the device makes one.
        LuksHeader.writeFully(channel, toBytes(), 0);
        channel.force(true);
    }

    List<String> describe() {
        List<String> lines = new ArrayList<>();
        lines.add("Hash spec:      " + hash.luksName);
        lines.add("MK iterations:  " + mkDigest.iterations());
        return lines;
    }
}
