package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The LUKS2 header (LUKS2 On-Disk Format Specification): two copies of a 4096-byte binary header followed by
 * a JSON metadata area, then the key-slot areas and the data segment. Each copy carries a SHA-256 checksum over
 * the binary header (checksum field zeroed) and the JSON area, and a sequence id; readers take the valid copy
 * with the higher seqid, so writing the copies one after the other is crash-safe.
 *
 * <p>The parsed JSON tree is kept and edited in place, so objects we do not interpret (tokens, a label, flags)
 * survive a key-slot change.
 */
final class Luks2Header implements LuksHeader {

    static final int BINARY_SIZE = 4096;
    /** cryptsetup's default metadata size per copy (4 KiB binary + 12 KiB JSON). */
    static final int DEFAULT_HDR_SIZE = 16 * 1024;
    /** cryptsetup's default data offset: 16 MiB, almost all of it key-slot area. */
    static final long DEFAULT_DATA_OFFSET = 16L * 1024 * 1024;
    static final int MAX_SLOTS = 32;
    static final int SALT_BYTES = 32;
    private static final byte[] MAGIC_2ND = {'S', 'K', 'U', 'L', (byte) 0xba, (byte) 0xbe};
    /** Where cryptsetup may place the secondary header when the primary is unreadable. */
    private static final long[] SECONDARY_OFFSETS = {0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000};
    private static final int OFF_HDR_SIZE = 8;
    private static final int OFF_SEQID = 16;
    private static final int OFF_LABEL = 24;
    private static final int OFF_CSUM_ALG = 72;
    private static final int OFF_SALT = 104;
    private static final int OFF_UUID = 168;
    private static final int OFF_SUBSYSTEM = 208;
    private static final int OFF_HDR_OFFSET = 256;
    private static final int OFF_CSUM = 448;

    private final Path image;
    private final long hdrSize;
    private long seqid;
    private final byte[] label;
    private final byte[] subsystem;
    private final byte[] salt1;
    private final byte[] salt2;
    private final String uuid;
    private final Map<String, Object> json;
    // Interpreted from json; kept in step by activate/deactivate.
    private final long dataOffset;
    private final int sectorSize;
    private final long keyslotsSize;

    private Luks2Header(Path image, long hdrSize, long seqid, byte[] label, byte[] subsystem, byte[] salt1, byte[] salt2,
                        String uuid, Map<String, Object> json) throws LuksException {
        this.image = image;
        this.hdrSize = hdrSize;
        this.seqid = seqid;
        this.label = label;
        this.subsystem = subsystem;
        this.salt1 = salt1;
        this.salt2 = salt2;
        this.uuid = uuid;
        this.json = json;
        Map<String, Object> segment = onlySegment();
        this.dataOffset = u64(segment, "offset", "segments.0.offset");
        this.sectorSize = (int) integer(segment, "sector_size", "segments.0.sector_size");
        this.keyslotsSize = u64(object(json, "config", "config"), "keyslots_size", "config.keyslots_size");
        validate();
    }

    /** A new header: one crypt segment at {@link #DEFAULT_DATA_OFFSET}, no key slots yet, one PBKDF2 master-key digest. */
    static Luks2Header create(Path image, String uuid, int sectorSize, int keyBytes, MasterKeyDigest digest, SecureRandom random) throws LuksException {
        long hdrSize = DEFAULT_HDR_SIZE;
        Map<String, Object> segment = new LinkedHashMap<>();
        segment.put("type", "crypt");
        segment.put("offset", Long.toString(DEFAULT_DATA_OFFSET));
        segment.put("size", "dynamic");
        segment.put("iv_tweak", "0");
        segment.put("encryption", CIPHER);
        segment.put("sector_size", (long) sectorSize);
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("type", "pbkdf2");
        d.put("keyslots", new ArrayList<Object>());
        d.put("segments", new ArrayList<Object>(List.of("0")));
        d.put("hash", digest.hash().luksName);
        d.put("iterations", (long) digest.iterations());
        d.put("salt", b64(digest.salt()));
        d.put("digest", b64(digest.digest()));
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("json_size", Long.toString(hdrSize - BINARY_SIZE));
        config.put("keyslots_size", Long.toString(DEFAULT_DATA_OFFSET - 2 * hdrSize));
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("keyslots", new LinkedHashMap<String, Object>());
        root.put("tokens", new LinkedHashMap<String, Object>());
        root.put("segments", new LinkedHashMap<String, Object>(Map.of("0", segment)));
        root.put("digests", new LinkedHashMap<String, Object>(Map.of("0", d)));
        root.put("config", config);
        byte[] s1 = new byte[64];
        byte[] s2 = new byte[64];
        random.nextBytes(s1);
        random.nextBytes(s2);
        return new Luks2Header(image, hdrSize, 0, new byte[48], new byte[48], s1, s2, uuid, root);
    }

    private record Copy(long offset, long hdrSize, long seqid, ByteBuffer area) {
    }

    static Luks2Header read(Path image, FileChannel channel) throws IOException {
        List<String> problems = new ArrayList<>();
        Copy primary = readCopy(image, channel, 0, LuksHeader.MAGIC, problems);
        Copy secondary = null;
        if (primary != null) {
            secondary = readCopy(image, channel, primary.hdrSize(), MAGIC_2ND, problems);
        } else {
            for (long off : SECONDARY_OFFSETS) {
                secondary = readCopy(image, channel, off, MAGIC_2ND, new ArrayList<>());
                if (secondary != null) {
                    break;
                }
            }
        }
        Copy best = primary == null ? secondary
                : secondary == null ? primary
                : secondary.seqid() > primary.seqid() ? secondary : primary;
        if (best == null) {
            throw new LuksException(image, "LUKS2 header", "has no valid copy: " + String.join("; ", problems));
        }
        ByteBuffer a = best.area();
        byte[] label = new byte[48];
        a.get(OFF_LABEL, label);
        byte[] subsystem = new byte[48];
        a.get(OFF_SUBSYSTEM, subsystem);
        String uuid = LuksHeader.cString(a, OFF_UUID, 40);
        // Keep each copy's own salt when both are there; a lost copy gets a fresh one on the next write.
        byte[] s1 = new byte[64];
        byte[] s2 = new byte[64];
        (primary != null ? primary : best).area().get(OFF_SALT, s1);
        (secondary != null ? secondary : best).area().get(OFF_SALT, s2);
        int jsonEnd = BINARY_SIZE;
        while (jsonEnd < best.hdrSize() && a.get(jsonEnd) != 0) {
            jsonEnd++;
        }
        byte[] text = new byte[jsonEnd - BINARY_SIZE];
        a.get(BINARY_SIZE, text);
        Object tree;
        try {
            tree = Json.parse(new String(text, StandardCharsets.US_ASCII));
        } catch (IllegalArgumentException e) {
            throw new LuksException(image, "LUKS2 JSON metadata", "is malformed: " + e.getMessage(), e);
        }
        if (!(tree instanceof Map<?, ?>)) {
            throw new LuksException(image, "LUKS2 JSON metadata", "is not an object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> root = (Map<String, Object>) tree;
        return new Luks2Header(image, best.hdrSize(), best.seqid(), label, subsystem, s1, s2, uuid, root);
    }

    private static Copy readCopy(Path image, FileChannel channel, long offset, byte[] magic, List<String> problems) throws IOException {
        String which = offset == 0 ? "primary header" : "secondary header at " + offset;
        if (offset + BINARY_SIZE > channel.size()) {
            problems.add(which + " lies beyond the end of the file");
            return null;
        }
        ByteBuffer bin = ByteBuffer.allocate(BINARY_SIZE);
        LuksHeader.readFully(image, channel, bin, offset, "LUKS2 " + which);
        for (int i = 0; i < magic.length; i++) {
            if (bin.get(i) != magic[i]) {
                problems.add(which + ": bad magic");
                return null;
            }
        }
        int version = bin.getShort(6) & 0xffff;
        long hdrSize = bin.getLong(OFF_HDR_SIZE);
        if (version != 2) {
            problems.add(which + ": version " + version);
            return null;
        }
        // hdr_size is 16 KiB .. 4 MiB, a power of two (LUKS2 spec).
        if (hdrSize < DEFAULT_HDR_SIZE || hdrSize > 4 * 1024 * 1024 || Long.bitCount(hdrSize) != 1) {
            problems.add(which + ": hdr_size " + hdrSize + " invalid");
            return null;
        }
        if (bin.getLong(OFF_HDR_OFFSET) != offset) {
            problems.add(which + ": hdr_offset " + bin.getLong(OFF_HDR_OFFSET) + " does not match its position");
            return null;
        }
        String alg = LuksHeader.cString(bin, OFF_CSUM_ALG, 32);
        if (!alg.equals("sha256")) {
            problems.add(which + ": checksum_alg \"" + alg + "\" unsupported");
            return null;
        }
        ByteBuffer area = ByteBuffer.allocate((int) hdrSize);
        LuksHeader.readFully(image, channel, area, offset, "LUKS2 " + which);
        byte[] stored = new byte[32];
        area.get(OFF_CSUM, stored);
        if (!MessageDigest.isEqual(stored, checksum(area))) {
            problems.add(which + ": checksum mismatch");
            return null;
        }
        return new Copy(offset, hdrSize, area.getLong(OFF_SEQID), area);
    }

    /** SHA-256 over the whole copy with the 64-byte checksum field taken as zeros. */
    private static byte[] checksum(ByteBuffer area) {
        MessageDigest md = HashSpec.SHA256.newDigest();
        byte[] all = new byte[area.capacity()];
        area.get(0, all);
        java.util.Arrays.fill(all, OFF_CSUM, OFF_CSUM + 64, (byte) 0);
        md.update(all);
        return md.digest();
    }

    private void validate() throws LuksException {
        Map<String, Object> config = object(json, "config", "config");
        long jsonSize = u64(config, "json_size", "config.json_size");
        if (jsonSize != hdrSize - BINARY_SIZE) {
            throw new LuksException(image, "config.json_size", "is " + jsonSize + " but the header size says " + (hdrSize - BINARY_SIZE));
        }
        Object req = config.get("requirements");
        if (req instanceof Map<?, ?> r && r.get("mandatory") instanceof List<?> m && !m.isEmpty()) {
            throw new LuksException(image, "config.requirements.mandatory", "lists " + m + "; vhost-blk supports none (e.g. an interrupted reencryption)");
        }
        Map<String, Object> segment = onlySegment();
        String type = string(segment, "type", "segments.0.type");
        if (!type.equals("crypt")) {
            throw new LuksException(image, "segments.0.type", "is \"" + type + "\"; only \"crypt\" is supported");
        }
        String enc = string(segment, "encryption", "segments.0.encryption");
        if (!enc.equals(CIPHER)) {
            throw new LuksException(image, "segments.0.encryption", "is \"" + enc + "\"; only " + CIPHER + " is supported");
        }
        if (!string(segment, "iv_tweak", "segments.0.iv_tweak").equals("0")) {
            throw new LuksException(image, "segments.0.iv_tweak", "is not \"0\"; only untweaked segments are supported");
        }
        if (segment.containsKey("integrity")) {
            throw new LuksException(image, "segments.0.integrity", "is set; authenticated encryption (dm-integrity) is not supported");
        }
        try {
            XtsAes256.checkSectorSize(sectorSize);
        } catch (IllegalArgumentException e) {
            throw new LuksException(image, "segments.0.sector_size", e.getMessage(), e);
        }
        if (dataOffset % sectorSize != 0 || dataOffset < 2 * hdrSize) {
            throw new LuksException(image, "segments.0.offset", "is " + dataOffset + ": not sector-aligned or inside the metadata");
        }
        if (2 * hdrSize + keyslotsSize > dataOffset) {
            throw new LuksException(image, "config.keyslots_size", "is " + keyslotsSize + ": the key-slot area overlaps the data at " + dataOffset);
        }
        object(json, "keyslots", "keyslots");
        object(json, "digests", "digests");
    }

    private Map<String, Object> onlySegment() throws LuksException {
        Map<String, Object> segments = object(json, "segments", "segments");
        if (segments.size() != 1 || !segments.containsKey("0")) {
            throw new LuksException(image, "segments", "has " + segments.keySet() + "; exactly one segment \"0\" is supported (no reencryption in progress)");
        }
        return object(segments, "0", "segments.0");
    }

    // --- LuksHeader ---

    @Override
    public LuksVersion version() {
        return LuksVersion.LUKS2;
    }

    @Override
    public String uuid() {
        return uuid;
    }

    @Override
    public long payloadOffset() {
        return dataOffset;
    }

    @Override
    public int sectorSize() {
        return sectorSize;
    }

    @Override
    public int keyBytes() {
        return XtsAes256.KEY_BYTES;
    }

    @Override
    public int maxSlots() {
        return MAX_SLOTS;
    }

    /** Key slots we can use; a slot with an unsupported KDF, AF or area cipher is reported as an exception. */
    @Override
    public List<KeySlot> slots() {
        List<KeySlot> out = new ArrayList<>();
        for (Map.Entry<String, Object> e : keyslots().entrySet()) {
            try {
                out.add(parseSlot(e.getKey(), e.getValue()));
            } catch (LuksException ex) {
                // An unusable slot must not hide the usable ones; unlock reports it if nothing else opens.
                out.add(null);
            }
        }
        out.removeIf(java.util.Objects::isNull);
        return out;
    }

    /** Every key-slot problem, for error messages and dumps. */
    List<String> slotProblems() {
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, Object> e : keyslots().entrySet()) {
            try {
                parseSlot(e.getKey(), e.getValue());
            } catch (LuksException ex) {
                problems.add(ex.getMessage());
            }
        }
        return problems;
    }

    private KeySlot parseSlot(String id, Object node) throws LuksException {
        String p = "keyslots." + id;
        int index;
        try {
            index = Integer.parseInt(id);
        } catch (NumberFormatException e) {
            throw new LuksException(image, p, "has a non-numeric id", e);
        }
        if (!(node instanceof Map<?, ?>)) {
            throw new LuksException(image, p, "is not an object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> s = (Map<String, Object>) node;
        if (!string(s, "type", p + ".type").equals("luks2")) {
            throw new LuksException(image, p + ".type", "is not \"luks2\"");
        }
        int keyBytes = (int) integer(s, "key_size", p + ".key_size");
        if (keyBytes != XtsAes256.KEY_BYTES) {
            throw new LuksException(image, p + ".key_size", "is " + keyBytes + "; only 64-byte volume keys are supported");
        }
        Map<String, Object> af = object(s, "af", p + ".af");
        if (!string(af, "type", p + ".af.type").equals("luks1")) {
            throw new LuksException(image, p + ".af.type", "is not \"luks1\"");
        }
        int stripes = (int) integer(af, "stripes", p + ".af.stripes");
        String afHashName = string(af, "hash", p + ".af.hash");
        HashSpec afHash = HashSpec.byLuksName(afHashName);
        if (afHash == null) {
            throw new LuksException(image, p + ".af.hash", "is \"" + afHashName + "\"; supported: sha1, sha256, sha512");
        }
        Map<String, Object> area = object(s, "area", p + ".area");
        if (!string(area, "type", p + ".area.type").equals("raw")) {
            throw new LuksException(image, p + ".area.type", "is not \"raw\"");
        }
        if (!string(area, "encryption", p + ".area.encryption").equals(CIPHER) || integer(area, "key_size", p + ".area.key_size") != 64) {
            throw new LuksException(image, p + ".area", "is not " + CIPHER + " with a 64-byte key");
        }
        long offset = u64(area, "offset", p + ".area.offset");
        long size = u64(area, "size", p + ".area.size");
        if (offset < 2 * hdrSize || offset + size > 2 * hdrSize + keyslotsSize || (long) keyBytes * stripes > size || stripes < 1) {
            throw new LuksException(image, p + ".area", "offset " + offset + " size " + size + " lies outside the key-slot area or is too small");
        }
        Map<String, Object> kdf = object(s, "kdf", p + ".kdf");
        String kdfType = string(kdf, "type", p + ".kdf.type");
        byte[] salt = base64(kdf, "salt", p + ".kdf.salt");
        KdfParams params = switch (kdfType) {
            case "pbkdf2" -> {
                String hn = string(kdf, "hash", p + ".kdf.hash");
                HashSpec h = HashSpec.byLuksName(hn);
                if (h == null) {
                    throw new LuksException(image, p + ".kdf.hash", "is \"" + hn + "\"; supported: sha1, sha256, sha512");
                }
                yield new KdfParams.Pbkdf2Params(h, (int) integer(kdf, "iterations", p + ".kdf.iterations"), salt);
            }
            case "argon2i", "argon2id" -> new KdfParams.Argon2Params(kdfType.equals("argon2id"),
                    (int) integer(kdf, "time", p + ".kdf.time"), (int) integer(kdf, "memory", p + ".kdf.memory"),
                    (int) integer(kdf, "cpus", p + ".kdf.cpus"), salt);
            default -> throw new LuksException(image, p + ".kdf.type", "is \"" + kdfType + "\"; supported: pbkdf2, argon2i, argon2id");
        };
        return new KeySlot(index, true, params, offset, size, stripes, keyBytes, afHash);
    }

    @Override
    public MasterKeyDigest digestFor(KeySlot slot) {
        Map<String, Object> digests = asMap(json.get("digests"));
        for (Object node : digests.values()) {
            Map<String, Object> d = asMap(node);
            if (d.get("keyslots") instanceof List<?> ks && ks.contains(Integer.toString(slot.index()))
                    && "pbkdf2".equals(d.get("type"))) {
                HashSpec h = d.get("hash") instanceof String hn ? HashSpec.byLuksName(hn) : null;
                if (h == null || !(d.get("iterations") instanceof Long it) || !(d.get("salt") instanceof String salt)
                        || !(d.get("digest") instanceof String digest)) {
                    return null;
                }
                try {
                    return new MasterKeyDigest(h, it.intValue(), Base64.getDecoder().decode(salt), Base64.getDecoder().decode(digest));
                } catch (IllegalArgumentException e) {
                    return null;
                }
            }
        }
        return null;
    }

    /** The segment's digest: the one new key slots are bound to. */
    private Map<String, Object> segmentDigest() {
        for (Object node : asMap(json.get("digests")).values()) {
            Map<String, Object> d = asMap(node);
            if (d.get("segments") instanceof List<?> segs && segs.contains("0")) {
                return d;
            }
        }
        throw new IllegalStateException(image + ": no digest covers segment 0");
    }

    @Override
    public KeySlot allocateSlot(KdfParams kdf) {
        Map<String, Object> slots = keyslots();
        int index = -1;
        for (int i = 0; i < MAX_SLOTS; i++) {
            if (!slots.containsKey(Integer.toString(i))) {
                index = i;
                break;
            }
        }
        if (index < 0) {
            return null;
        }
        long need = roundUp((long) XtsAes256.KEY_BYTES * KeySlot.STRIPES, 4096);
        // First fit in the key-slot area, skipping every area in use (also those of slots we cannot parse).
        List<long[]> used = new ArrayList<>();
        for (Object node : slots.values()) {
            Map<String, Object> area = asMap(asMap(node).get("area"));
            if (area.get("offset") instanceof String o && area.get("size") instanceof String sz) {
                used.add(new long[] {Long.parseLong(o), Long.parseLong(sz)});
            }
        }
        long start = 2 * hdrSize;
        long end = 2 * hdrSize + keyslotsSize;
        for (long off = start; off + need <= end; ) {
            long clash = -1;
            for (long[] u : used) {
                if (off < u[0] + u[1] && u[0] < off + need) {
                    clash = Math.max(clash, u[0] + u[1]);
                }
            }
            if (clash < 0) {
                return new KeySlot(index, false, kdf, off, need, KeySlot.STRIPES, XtsAes256.KEY_BYTES, HashSpec.SHA256);
            }
            off = roundUp(clash, 4096);
        }
        return null;
    }

    private static long roundUp(long v, long align) {
        return (v + align - 1) / align * align;
    }

    @Override
    public void activate(KeySlot slot) {
        Map<String, Object> kdf = new LinkedHashMap<>();
        switch (slot.kdf()) {
            case KdfParams.Pbkdf2Params p -> {
                kdf.put("type", "pbkdf2");
                kdf.put("hash", p.hash().luksName);
                kdf.put("iterations", (long) p.iterations());
                kdf.put("salt", b64(p.salt()));
            }
            case KdfParams.Argon2Params a -> {
                kdf.put("type", a.typeName());
                kdf.put("time", (long) a.time());
                kdf.put("memory", (long) a.memoryKiB());
                kdf.put("cpus", (long) a.cpus());
                kdf.put("salt", b64(a.salt()));
            }
        }
        Map<String, Object> af = new LinkedHashMap<>();
        af.put("type", "luks1");
        af.put("stripes", (long) slot.stripes());
        af.put("hash", slot.afHash().luksName);
        Map<String, Object> area = new LinkedHashMap<>();
        area.put("type", "raw");
        area.put("offset", Long.toString(slot.areaOffset()));
        area.put("size", Long.toString(slot.areaSize()));
        area.put("encryption", CIPHER);
        area.put("key_size", (long) slot.keyBytes());
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("type", "luks2");
        s.put("key_size", (long) slot.keyBytes());
        s.put("af", af);
        s.put("area", area);
        s.put("kdf", kdf);
        String id = Integer.toString(slot.index());
        keyslots().put(id, s);
        List<Object> bound = asList(segmentDigest().get("keyslots"));
        if (!bound.contains(id)) {
            bound.add(id);
        }
    }

    @Override
    public void deactivate(int index) {
        String id = Integer.toString(index);
        keyslots().remove(id);
        for (Object node : asMap(json.get("digests")).values()) {
            asList(asMap(node).get("keyslots")).remove(id);
        }
        // Tokens bound to the removed slot would point at nothing; cryptsetup unbinds them too.
        if (json.get("tokens") instanceof Map<?, ?> tokens) {
            for (Object t : tokens.values()) {
                if (t instanceof Map<?, ?> tm && tm.get("keyslots") instanceof List<?> l) {
                    l.remove(id);
                }
            }
        }
    }

    @Override
    public void write(FileChannel channel) throws IOException {
        seqid++;
        byte[] text = Json.write(json).getBytes(StandardCharsets.US_ASCII);
        if (text.length >= hdrSize - BINARY_SIZE) {
            throw new LuksException(image, "LUKS2 JSON metadata", "needs " + text.length + " bytes, over the " + (hdrSize - BINARY_SIZE) + "-byte area");
        }
        // Primary first: until it is complete the secondary still holds the previous valid state.
        LuksHeader.writeFully(channel, copy(0, LuksHeader.MAGIC, salt1, text), 0);
        channel.force(true);
        LuksHeader.writeFully(channel, copy(hdrSize, MAGIC_2ND, salt2, text), hdrSize);
        channel.force(true);
    }

    private ByteBuffer copy(long offset, byte[] magic, byte[] salt, byte[] text) {
        ByteBuffer a = ByteBuffer.allocate((int) hdrSize);
        a.put(0, magic);
        a.putShort(6, (short) 2);
        a.putLong(OFF_HDR_SIZE, hdrSize);
        a.putLong(OFF_SEQID, seqid);
        a.put(OFF_LABEL, label);
        LuksHeader.putCString(a, OFF_CSUM_ALG, 32, "sha256");
        a.put(OFF_SALT, salt);
        LuksHeader.putCString(a, OFF_UUID, 40, uuid);
        a.put(OFF_SUBSYSTEM, subsystem);
        a.putLong(OFF_HDR_OFFSET, offset);
        a.put(BINARY_SIZE, text);
        a.put(OFF_CSUM, checksum(a));
        return a;
    }

    long hdrSize() {
        return hdrSize;
    }

    long keyslotsSize() {
        return keyslotsSize;
    }

    long seqid() {
        return seqid;
    }

    // --- JSON helpers, each naming the field on failure ---

    private Map<String, Object> keyslots() {
        return asMap(json.get("keyslots"));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object o) {
        return o instanceof Map<?, ?> m ? (Map<String, Object>) m : new LinkedHashMap<>();
    }

    @SuppressWarnings("unchecked")
    private static List<Object> asList(Object o) {
        return o instanceof List<?> l ? (List<Object>) l : new ArrayList<>();
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> object(Map<String, Object> parent, String key, String path) throws LuksException {
        if (parent.get(key) instanceof Map<?, ?> m) {
            return (Map<String, Object>) m;
        }
        throw new LuksException(image, path, "is missing or not an object");
    }

    private String string(Map<String, Object> parent, String key, String path) throws LuksException {
        if (parent.get(key) instanceof String s) {
            return s;
        }
        throw new LuksException(image, path, "is missing or not a string");
    }

    private long integer(Map<String, Object> parent, String key, String path) throws LuksException {
        if (parent.get(key) instanceof Long l && l >= 0 && l <= Integer.MAX_VALUE) {
            return l;
        }
        throw new LuksException(image, path, "is missing or not a non-negative integer");
    }

    /** LUKS2 writes 64-bit values as decimal strings (JSON numbers lose precision past 2^53). */
    private long u64(Map<String, Object> parent, String key, String path) throws LuksException {
        String s = string(parent, key, path);
        try {
            long v = Long.parseLong(s);
            if (v < 0) {
                throw new NumberFormatException("negative");
            }
            return v;
        } catch (NumberFormatException e) {
            throw new LuksException(image, path, "is \"" + s + "\", not an unsigned decimal", e);
        }
    }

    private byte[] base64(Map<String, Object> parent, String key, String path) throws LuksException {
        String s = string(parent, key, path);
        try {
            return Base64.getDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            throw new LuksException(image, path, "is not valid base64", e);
        }
    }

    private static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }
}
