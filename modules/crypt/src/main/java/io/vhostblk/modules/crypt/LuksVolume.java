package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;

/**
 * LUKS1/LUKS2 images as cryptsetup and QEMU make them: format, unlock, and key-slot management.
 *
 * <p>Crash safety where it is cheap: a new slot's key material is written and fsynced before the header that
 * activates it; a removed slot is deactivated in the header (fsynced) before its material is overwritten; a
 * changed passphrase goes to a free slot before the old slot is removed. A wrong passphrase changes nothing.
 * Callers must not run two of these on one image at once (no file locking yet), nor while a server has it open
 * for writing the header (data I/O is unaffected: only metadata changes).
 */
public final class LuksVolume {

    private static final SecureRandom RANDOM = new SecureRandom();
    /** cryptsetup's time for the master-key digest's PBKDF2. */
    private static final int DIGEST_ITER_TIME_MS = 125;

    private LuksVolume() {
    }

    /**
     * Formats {@code image} (created if missing; then {@code options.payloadSize()} is required) with a new
     * random master key and {@code secret} in key slot 0. Existing LUKS metadata is wiped; the payload area is
     * left as it is (it reads as garbage under the new key).
     */
    public static void format(Path image, Secret secret, FormatOptions options) throws IOException {
        boolean exists = Files.exists(image);
        if (!exists && options.payloadSize() == 0) {
            throw new LuksException(image, "size", "is required to create a new image");
        }
        byte[] masterKey = new byte[XtsAes256.KEY_BYTES];
        RANDOM.nextBytes(masterKey);
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            KdfOptions kdf = options.kdf();
            int digestIterations = kdf.iterations() > 0
                    ? KdfOptions.MIN_PBKDF2_ITERATIONS
                    : Pbkdf2.iterationsFor(HashSpec.SHA256, XtsAes256.KEY_BYTES, DIGEST_ITER_TIME_MS, KdfOptions.MIN_PBKDF2_ITERATIONS);
            byte[] digestSalt = new byte[32];
            RANDOM.nextBytes(digestSalt);
            String uuid = UUID.randomUUID().toString();
            LuksHeader header;
            if (options.version() == LuksVersion.LUKS1) {
                MasterKeyDigest d = MasterKeyDigest.compute(HashSpec.SHA256, digestIterations, digestSalt, masterKey, Luks1Header.DIGEST_BYTES);
                header = Luks1Header.create(uuid, HashSpec.SHA256, XtsAes256.KEY_BYTES, d);
            } else {
                MasterKeyDigest d = MasterKeyDigest.compute(HashSpec.SHA256, digestIterations, digestSalt, masterKey, HashSpec.SHA256.length);
                header = Luks2Header.create(image, uuid, options.sectorSize(), XtsAes256.KEY_BYTES, d, RANDOM);
            }
            long payloadOffset = header.payloadOffset();
            long total = options.payloadSize() > 0 ? payloadOffset + options.payloadSize() : ch.size();
            long payload = total - payloadOffset;
            if (payload < options.sectorSize()) {
                throw new LuksException(image, "size", "is " + ch.size() + " bytes; " + options.version()
                        + " needs " + payloadOffset + " bytes of header plus a payload (give a size)");
            }
            if (payload % options.sectorSize() != 0) {
                throw new LuksException(image, "size", "leaves a payload of " + payload + " bytes, not a multiple of the sector size " + options.sectorSize());
            }
            zero(ch, 0, payloadOffset);
            if (options.payloadSize() > 0) {
                setSize(ch, total);
            }
            KeySlot slot = header.allocateSlot(newKdf(options.kdf()));
            storeMaterial(ch, slot, masterKey, secret);
            header.activate(slot);
            header.write(ch);
        } finally {
            Arrays.fill(masterKey, (byte) 0);
        }
    }

    /** Recovers the master key with {@code secret}; throws {@link WrongPassphraseException} if no slot opens. */
    public static UnlockedVolume unlock(Path image, Secret secret) throws IOException {
        try (FileChannel ch = openExisting(image, false)) {
            LuksHeader header = LuksHeader.read(image, ch);
            Opened o = open(image, ch, header, secret);
            long payload = Math.max(0, ch.size() - header.payloadOffset());
            payload -= payload % header.sectorSize();
            return new UnlockedVolume(image, header.version(), header.uuid(), o.slot().index(), header.payloadOffset(),
                    payload, header.sectorSize(), o.masterKey());
        }
    }

    /** Adds {@code added} in a free key slot, authorised by {@code existing}; returns the new slot's index. */
    public static int addKey(Path image, Secret existing, Secret added, KdfOptions kdf) throws IOException {
        try (FileChannel ch = openExisting(image, true)) {
            LuksHeader header = LuksHeader.read(image, ch);
            Opened o = open(image, ch, header, existing);
            try {
                KeySlot slot = header.allocateSlot(newKdf(kdfFor(header, kdf)));
                if (slot == null) {
                    throw new NoFreeKeySlotException(image, header.maxSlots());
                }
                storeMaterial(ch, slot, o.masterKey(), added);
                header.activate(slot);
                header.write(ch);
                return slot.index();
            } finally {
                Arrays.fill(o.masterKey(), (byte) 0);
            }
        }
    }

    /** Removes the key slot that {@code secret} opens; refuses to remove the last one. Returns the slot index. */
    public static int removeKey(Path image, Secret secret) throws IOException {
        try (FileChannel ch = openExisting(image, true)) {
            LuksHeader header = LuksHeader.read(image, ch);
            Opened o = open(image, ch, header, secret);
            Arrays.fill(o.masterKey(), (byte) 0);
            kill(image, ch, header, o.slot());
            return o.slot().index();
        }
    }

    /** Removes key slot {@code index}, authorised by a secret that opens any slot; refuses to remove the last one. */
    public static void removeSlot(Path image, int index, Secret authorising) throws IOException {
        try (FileChannel ch = openExisting(image, true)) {
            LuksHeader header = LuksHeader.read(image, ch);
            Opened o = open(image, ch, header, authorising);
            Arrays.fill(o.masterKey(), (byte) 0);
            KeySlot target = header.slots().stream().filter(s -> s.index() == index && s.active()).findFirst()
                    .orElseThrow(() -> new LuksException(image, "key slot " + index, "is not active"));
            kill(image, ch, header, target);
        }
    }

    /**
     * Replaces the passphrase {@code old} with {@code replacement}. The new passphrase goes to a free slot and
     * the old slot is then removed, so a crash leaves at least one of them working; only when every slot is in
     * use is the old slot rewritten in place (as cryptsetup does), which a crash mid-write could destroy.
     * Returns the index of the slot now holding {@code replacement}.
     */
    public static int changeKey(Path image, Secret old, Secret replacement, KdfOptions kdf) throws IOException {
        try (FileChannel ch = openExisting(image, true)) {
            LuksHeader header = LuksHeader.read(image, ch);
            Opened o = open(image, ch, header, old);
            try {
                KdfParams params = newKdf(kdfFor(header, kdf));
                KeySlot slot = header.allocateSlot(params);
                if (slot != null) {
                    storeMaterial(ch, slot, o.masterKey(), replacement);
                    header.activate(slot);
                    header.write(ch);
                    header.deactivate(o.slot().index());
                    header.write(ch);
                    wipe(ch, o.slot());
                    return slot.index();
                }
                KeySlot same = new KeySlot(o.slot().index(), false, params, o.slot().areaOffset(), o.slot().areaSize(),
                        KeySlot.STRIPES, o.slot().keyBytes(), o.slot().afHash());
                storeMaterial(ch, same, o.masterKey(), replacement);
                header.activate(same);
                header.write(ch);
                return same.index();
            } finally {
                Arrays.fill(o.masterKey(), (byte) 0);
            }
        }
    }

    /** A human-readable description of the header: layout and key-slot parameters, no key material. */
    public static String dump(Path image) throws IOException {
        try (FileChannel ch = openExisting(image, false)) {
            LuksHeader h = LuksHeader.read(image, ch);
            StringBuilder sb = new StringBuilder();
            sb.append("LUKS header of ").append(image).append('\n');
            sb.append("Version:        ").append(h.version() == LuksVersion.LUKS1 ? 1 : 2).append('\n');
            sb.append("UUID:           ").append(h.uuid()).append('\n');
            sb.append("Cipher:         ").append(LuksHeader.CIPHER).append(" (").append(h.keyBytes() * 8).append("-bit key)\n");
            sb.append("Sector size:    ").append(h.sectorSize()).append('\n');
            sb.append("Payload offset: ").append(h.payloadOffset()).append(" bytes\n");
            long payload = Math.max(0, ch.size() - h.payloadOffset());
            sb.append("Payload size:   ").append(payload - payload % h.sectorSize()).append(" bytes\n");
            if (h instanceof Luks1Header l1) {
                sb.append("MK digest:      pbkdf2 ").append(l1.hash().luksName).append(", ").append(l1.mkDigest().iterations()).append(" iterations\n");
            }
            sb.append("Key slots:\n");
            List<KeySlot> slots = h.slots();
            for (KeySlot s : slots) {
                if (s.active()) {
                    sb.append("  ").append(s.index()).append(": ENABLED  ").append(s.kdf().describe())
                            .append(", AF stripes ").append(s.stripes()).append(' ').append(s.afHash().luksName)
                            .append(", area ").append(s.areaOffset()).append('+').append(s.areaSize()).append('\n');
                } else {
                    sb.append("  ").append(s.index()).append(": DISABLED\n");
                }
            }
            if (h instanceof Luks2Header l2) {
                for (String p : l2.slotProblems()) {
                    sb.append("  unusable: ").append(p).append('\n');
                }
            }
            return sb.toString();
        }
    }

    // --- internals ---

    private record Opened(KeySlot slot, byte[] masterKey) {
    }

    private static FileChannel openExisting(Path image, boolean write) throws IOException {
        try {
            return write ? FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : FileChannel.open(image, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new LuksException(image, "image", "does not exist", e);
        }
    }

    /** Tries every active slot; the first whose recovered key matches its digest wins. */
    private static Opened open(Path image, FileChannel ch, LuksHeader header, Secret secret) throws IOException {
        boolean any = false;
        for (KeySlot slot : header.slots()) {
            if (!slot.active()) {
                continue;
            }
            MasterKeyDigest digest = header.digestFor(slot);
            if (digest == null) {
                continue;
            }
            any = true;
            byte[] candidate = recover(image, ch, slot, secret);
            if (digest.matches(candidate)) {
                return new Opened(slot, candidate);
            }
            Arrays.fill(candidate, (byte) 0);
        }
        if (!any) {
            String detail = header instanceof Luks2Header l2 && !l2.slotProblems().isEmpty() ? ": " + String.join("; ", l2.slotProblems()) : "";
            throw new LuksException(image, "key slots", "has no usable active key slot" + detail);
        }
        throw new WrongPassphraseException(image);
    }

    private static byte[] recover(Path image, FileChannel ch, KeySlot slot, Secret secret) throws IOException {
        int length = Math.toIntExact(slot.materialBytes());
        if (slot.areaOffset() + length > ch.size()) {
            throw new LuksException(image, "key slot " + slot.index() + " key material", "lies beyond the end of the file");
        }
        byte[] material = new byte[length];
        byte[] slotKey = slot.kdf().derive(secret, slot.keyBytes());
        try (XtsAes256 cipher = new XtsAes256(slotKey)) {
            LuksHeader.readFully(image, ch, ByteBuffer.wrap(material), slot.areaOffset(), "key slot " + slot.index() + " key material");
            MemorySegment seg = MemorySegment.ofArray(material);
            // Key material is encrypted as sectors 0, 1, ... of its own area (LUKS1 spec 2.4), 512 bytes each.
            cipher.decrypt(0, seg, seg, 512);
            return AfSplitter.merge(material, slot.keyBytes(), slot.stripes(), slot.afHash());
        } finally {
            Arrays.fill(slotKey, (byte) 0);
            Arrays.fill(material, (byte) 0);
        }
    }

    /** Splits, encrypts and writes the slot's key material, then fsyncs; the header still says inactive. */
    private static void storeMaterial(FileChannel ch, KeySlot slot, byte[] masterKey, Secret secret) throws IOException {
        byte[] split = AfSplitter.split(masterKey, slot.stripes(), slot.afHash(), RANDOM);
        byte[] material = Arrays.copyOf(split, Math.toIntExact(slot.materialBytes()));
        Arrays.fill(split, (byte) 0);
        byte[] slotKey = slot.kdf().derive(secret, slot.keyBytes());
        try (XtsAes256 cipher = new XtsAes256(slotKey)) {
            MemorySegment seg = MemorySegment.ofArray(material);
            cipher.encrypt(0, seg, seg, 512);
            LuksHeader.writeFully(ch, ByteBuffer.wrap(material), slot.areaOffset());
            ch.force(true);
        } finally {
            Arrays.fill(slotKey, (byte) 0);
            Arrays.fill(material, (byte) 0);
        }
    }

    private static void kill(Path image, FileChannel ch, LuksHeader header, KeySlot slot) throws IOException {
        long active = header.slots().stream().filter(KeySlot::active).count();
        if (active <= 1) {
            throw new LuksException(image, "key slot " + slot.index(),
                    "is the last active key slot; removing it would make the image unreadable for ever");
        }
        header.deactivate(slot.index());
        header.write(ch);
        wipe(ch, slot);
    }

    /** Overwrites a slot's material with random bytes (the header no longer points at it) and fsyncs. */
    private static void wipe(FileChannel ch, KeySlot slot) throws IOException {
        byte[] noise = new byte[Math.toIntExact(slot.materialBytes())];
        RANDOM.nextBytes(noise);
        LuksHeader.writeFully(ch, ByteBuffer.wrap(noise), slot.areaOffset());
        ch.force(true);
    }

    private static KdfOptions kdfFor(LuksHeader header, KdfOptions requested) {
        KdfOptions k = requested != null ? requested : KdfOptions.defaults(header.version());
        if (header.version() == LuksVersion.LUKS1 && k.argon2()) {
            throw new IllegalArgumentException("LUKS1 key slots use PBKDF2 only");
        }
        return k;
    }

    /** Fresh salt and costs (benchmarked when the options ask for a time rather than a count). */
    static KdfParams newKdf(KdfOptions o) {
        byte[] salt = new byte[32];
        RANDOM.nextBytes(salt);
        if (!o.argon2()) {
            int iterations = o.iterations() > 0 ? o.iterations()
                    : Pbkdf2.iterationsFor(HashSpec.SHA256, XtsAes256.KEY_BYTES, o.iterTimeMillis(), KdfOptions.MIN_PBKDF2_ITERATIONS);
            return new KdfParams.Pbkdf2Params(HashSpec.SHA256, iterations, salt);
        }
        int memory = o.memoryKiB() > 0 ? o.memoryKiB() : KdfOptions.DEFAULT_ARGON2_MEMORY_KIB;
        int cpus = o.cpus() > 0 ? o.cpus() : KdfOptions.defaultCpus();
        int time = o.iterations();
        if (time == 0) {
            // Time the minimum cost once and scale linearly: Argon2's cost is linear in its time parameter.
            KdfParams.Argon2Params probe = new KdfParams.Argon2Params(true, KdfOptions.MIN_ARGON2_TIME, memory, cpus, salt);
            long start = System.nanoTime();
            try (Secret s = Secret.copyOf(new byte[] {1})) {
                Arrays.fill(probe.derive(s, XtsAes256.KEY_BYTES), (byte) 0);
            }
            double millis = Math.max(1, (System.nanoTime() - start) / 1e6);
            time = (int) Math.max(KdfOptions.MIN_ARGON2_TIME, Math.min(1000, KdfOptions.MIN_ARGON2_TIME * o.iterTimeMillis() / millis));
        }
        return new KdfParams.Argon2Params(true, time, memory, cpus, salt);
    }

    private static void zero(FileChannel ch, long from, long to) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
        for (long pos = from; pos < to; ) {
            zeros.clear().limit((int) Math.min(zeros.capacity(), to - pos));
            pos += ch.write(zeros, pos);
        }
    }

    /** Grows (sparsely) or shrinks the file to {@code size} bytes. */
    private static void setSize(FileChannel ch, long size) throws IOException {
        if (ch.size() > size) {
            ch.truncate(size);
        } else if (ch.size() < size) {
            ch.write(ByteBuffer.allocate(1), size - 1);
        }
    }
}
