package io.vhostblk.modules.crypt;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.ShortBufferException;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES-XTS-256 with dm-crypt's {@code plain64} IV ({@code aes-xts-plain64}, 512-bit key), over the JDK's AES.
 *
 * <p>Sector numbers are always in 512-byte units, as in virtio-blk and dm-crypt: a data unit (encryption
 * sector) of {@code sectorSize} bytes starting at 512-byte sector {@code s} has the tweak
 * {@code E_K2(le64(s) || 0^64)}. That is what LUKS1 (512 only) and LUKS2 with {@code sector_size} 4096 use
 * (cryptsetup never sets dm-crypt's {@code iv_large_sectors} for LUKS), so a 4096-byte unit's IV steps by 8.
 *
 * <p>The bulk path allocates nothing: data is processed in chunks through preallocated heap scratch arrays
 * (the JDK's AES-NI intrinsics run on byte[] without the temporary copies its ByteBuffer path makes), the
 * tweaks of every sector in a chunk are encrypted with one ECB call, the per-block tweak sequence is
 * multiplied by alpha with long arithmetic, and the XORs run 8 bytes at a time. An instance is therefore
 * <b>not thread-safe</b>: use one per queue worker ({@link UnlockedVolume#newCipher()}).
 *
 * <p>Key hygiene: our copies of the key are zeroed once the JDK ciphers are keyed; {@link #close()} zeroes
 * the scratch arrays and drops the ciphers. The JDK keeps its own expanded AES key schedule inside the
 * Cipher objects and offers no way to wipe it; it becomes unreachable when this object is closed.
 */
public final class XtsAes256 implements AutoCloseable {

    /** Key length: two AES-256 keys, data key first, tweak key second (IEEE 1619, dm-crypt, openssl). */
    public static final int KEY_BYTES = 64;
    /** dm-crypt's IV unit: sector numbers count 512-byte sectors whatever the encryption sector size. */
    public static final int IV_SECTOR = 512;

    private static final int BLOCK = 16;
    /** Bytes per pass: large enough to amortise the Cipher call, small enough to stay in L2. */
    private static final int CHUNK = 64 * 1024;
    private static final ValueLayout.OfLong LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** x^128 = x^7 + x^2 + x + 1: the reduction constant of XTS's GF(2^128), in the low byte. */
    private static final long GF_REDUCE = 0x87L;

    private Cipher dataEncrypt;
    private Cipher dataDecrypt;
    private Cipher tweakEncrypt;

    private final byte[] ivs = new byte[CHUNK / IV_SECTOR * BLOCK];
    private final byte[] tweaks = new byte[CHUNK / IV_SECTOR * BLOCK];
    private final byte[] in = new byte[CHUNK];
    private final byte[] out = new byte[CHUNK];
    private final long[] mask = new long[CHUNK / Long.BYTES];
    private final MemorySegment ivSeg = MemorySegment.ofArray(ivs);
    private final MemorySegment tweakSeg = MemorySegment.ofArray(tweaks);
    private final MemorySegment inSeg = MemorySegment.ofArray(in);
    private final MemorySegment outSeg = MemorySegment.ofArray(out);

    /** Keys a new cipher from a 64-byte key; the caller keeps ownership of (and wipes) {@code key}. */
    public XtsAes256(byte[] key) {
        if (key.length != KEY_BYTES) {
            throw new IllegalArgumentException("AES-XTS-256 needs a " + KEY_BYTES + "-byte key, got " + key.length + " bytes");
        }
        byte[] dataKey = Arrays.copyOfRange(key, 0, 32);
        byte[] tweakKey = Arrays.copyOfRange(key, 32, 64);
        try {
            SecretKeySpec k1 = new SecretKeySpec(dataKey, "AES");
            SecretKeySpec k2 = new SecretKeySpec(tweakKey, "AES");
            dataEncrypt = Cipher.getInstance("AES/ECB/NoPadding");
            dataEncrypt.init(Cipher.ENCRYPT_MODE, k1);
            dataDecrypt = Cipher.getInstance("AES/ECB/NoPadding");
            dataDecrypt.init(Cipher.DECRYPT_MODE, k1);
            tweakEncrypt = Cipher.getInstance("AES/ECB/NoPadding");
            tweakEncrypt.init(Cipher.ENCRYPT_MODE, k2);
        } catch (GeneralSecurityException e) {
            // Every JDK has AES/ECB/NoPadding; failing here means a broken runtime, not bad input.
            throw new IllegalStateException("the JDK's AES/ECB/NoPadding is unavailable", e);
        } finally {
            Arrays.fill(dataKey, (byte) 0);
            Arrays.fill(tweakKey, (byte) 0);
        }
    }

    /**
     * Encrypts whole data units from {@code src} (left untouched: it may be guest memory the guest gave us to
     * read) into {@code dst} (a bounce buffer). {@code firstSector} is the 512-byte sector number of the first
     * byte, aligned to {@code sectorSize}; {@code src.byteSize()} must be a multiple of {@code sectorSize}.
     * {@code dst} may be {@code src} itself.
     */
    public void encrypt(long firstSector, MemorySegment src, MemorySegment dst, int sectorSize) {
        process(true, firstSector, src, 0, dst, 0, src.byteSize(), sectorSize);
    }

    /**
     * Encrypts {@code length} bytes of whole data units from {@code src} at {@code srcOffset} into {@code dst} at
     * {@code dstOffset}; the form the I/O hook uses on a piece of request data (an {@code IoVector} cursor's
     * segment and offset) without creating a segment per piece.
     */
    public void encrypt(long firstSector, MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
                        long length, int sectorSize) {
        process(true, firstSector, src, srcOffset, dst, dstOffset, length, sectorSize);
    }

    /** Decrypts whole data units from {@code src} into {@code dst}; pass the same segment twice to decrypt in place. */
    public void decrypt(long firstSector, MemorySegment src, MemorySegment dst, int sectorSize) {
        process(false, firstSector, src, 0, dst, 0, src.byteSize(), sectorSize);
    }

    /** Decrypts {@code length} bytes of whole data units; {@code src == dst} with equal offsets decrypts in place. */
    public void decrypt(long firstSector, MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
                        long length, int sectorSize) {
        process(false, firstSector, src, srcOffset, dst, dstOffset, length, sectorSize);
    }

    private void process(boolean encrypt, long firstSector, MemorySegment src, long srcOffset, MemorySegment dst,
                         long dstOffset, long length, int sectorSize) {
        Cipher data = encrypt ? dataEncrypt : dataDecrypt;
        if (data == null) {
            throw new IllegalStateException("cipher closed");
        }
        checkSectorSize(sectorSize);
        if (length % sectorSize != 0) {
            throw new IllegalArgumentException("length " + length + " is not a multiple of the sector size " + sectorSize);
        }
        if (srcOffset < 0 || src.byteSize() - srcOffset < length) {
            throw new IllegalArgumentException("source holds " + (src.byteSize() - srcOffset) + " bytes from offset " + srcOffset + ", need " + length);
        }
        if (dstOffset < 0 || dst.byteSize() - dstOffset < length) {
            throw new IllegalArgumentException("destination holds " + (dst.byteSize() - dstOffset) + " bytes from offset " + dstOffset + ", need " + length);
        }
        int ivStep = sectorSize / IV_SECTOR;
        if (firstSector < 0 || firstSector % ivStep != 0) {
            throw new IllegalArgumentException("sector " + firstSector + " is not aligned to the " + sectorSize + "-byte sector size");
        }
        int blocksPerSector = sectorSize / BLOCK;
        int sectorsPerChunk = CHUNK / sectorSize;
        long sector = firstSector;
        for (long done = 0; done < length; ) {
            int chunk = (int) Math.min(CHUNK, length - done);
            int sectors = chunk / sectorSize;
            // All tweaks of the chunk in one AES call: T_s = E_K2(plain64(s)).
            for (int i = 0; i < sectors; i++) {
                ivSeg.set(LE, (long) i * BLOCK, sector + (long) i * ivStep);
                ivSeg.set(LE, (long) i * BLOCK + 8, 0L);
            }
            update(tweakEncrypt, ivs, sectors * BLOCK, tweaks);
            // Pass 1: in = src ^ T_j, remembering T_j (T_{j+1} = T_j * alpha) for pass 2.
            int m = 0;
            long off = 0;
            for (int i = 0; i < sectors; i++) {
                long lo = tweakSeg.get(LE, (long) i * BLOCK);
                long hi = tweakSeg.get(LE, (long) i * BLOCK + 8);
                for (int b = 0; b < blocksPerSector; b++) {
                    mask[m++] = lo;
                    mask[m++] = hi;
                    inSeg.set(LE, off, src.get(LE, srcOffset + done + off) ^ lo);
                    inSeg.set(LE, off + 8, src.get(LE, srcOffset + done + off + 8) ^ hi);
                    off += BLOCK;
                    long carry = (hi >> 63) & GF_REDUCE;
                    hi = (hi << 1) | (lo >>> 63);
                    lo = (lo << 1) ^ carry;
                }
            }
            update(data, in, chunk, out);
            // Pass 2: dst = AES(in) ^ T_j.
            for (int k = 0, words = chunk / Long.BYTES; k < words; k++) {
                long o = (long) k * Long.BYTES;
                dst.set(LE, dstOffset + done + o, outSeg.get(LE, o) ^ mask[k]);
            }
            done += chunk;
            sector += (long) sectors * ivStep;
            assert sectors <= sectorsPerChunk;
        }
    }

    private static void update(Cipher cipher, byte[] input, int length, byte[] output) {
        try {
            int n = cipher.update(input, 0, length, output, 0);
            if (n != length) {
                throw new IllegalStateException("AES/ECB returned " + n + " bytes for " + length);
            }
        } catch (ShortBufferException e) {
            // The scratch arrays are sized for a whole chunk; this is a bug, not an I/O condition.
            throw new IllegalStateException("scratch buffer too small", e);
        }
    }

    /** Accepts the sector sizes dm-crypt and LUKS2 allow: 512, 1024, 2048, 4096. */
    static void checkSectorSize(int sectorSize) {
        if (sectorSize < 512 || sectorSize > 4096 || Integer.bitCount(sectorSize) != 1) {
            throw new IllegalArgumentException("sector size " + sectorSize + " is not 512, 1024, 2048 or 4096");
        }
    }

    /** Zeroes the scratch arrays (they held plaintext) and drops the keyed ciphers; idempotent. */
    @Override
    public void close() {
        Arrays.fill(ivs, (byte) 0);
        Arrays.fill(tweaks, (byte) 0);
        Arrays.fill(in, (byte) 0);
        Arrays.fill(out, (byte) 0);
        Arrays.fill(mask, 0L);
        dataEncrypt = null;
        dataDecrypt = null;
        tweakEncrypt = null;
    }

    @Override
    public String toString() {
        return "XtsAes256[aes-xts-plain64, key redacted]";
    }
}
