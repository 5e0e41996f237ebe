package io.vhostblk.modules.crypt;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/** What {@link LuksVolume} needs of a LUKS1 or LUKS2 header: layout, key slots, master-key digest, persistence. */
sealed interface LuksHeader permits Luks1Header, Luks2Header {

    /** The cipher spec every header we accept uses, for data and key slots alike. */
    String CIPHER = "aes-xts-plain64";
    /** "LUKS" 0xBA 0xBE: the magic of LUKS1 and of LUKS2's primary header. */
    byte[] MAGIC = {'L', 'U', 'K', 'S', (byte) 0xba, (byte) 0xbe};

    LuksVersion version();

    String uuid();

    /** Byte offset of the encrypted payload. */
    long payloadOffset();

    /** Encryption sector size in bytes. */
    int sectorSize();

    /** Master key length in bytes (64 for AES-XTS-256). */
    int keyBytes();

    /** Every slot present in the header (LUKS1: all 8, active or not; LUKS2: the defined ones). */
    List<KeySlot> slots();

    /** Number of slot indices the format offers. */
    int maxSlots();

    /** The digest that verifies a master key recovered from {@code slot}, or null if none covers it. */
    MasterKeyDigest digestFor(KeySlot slot);

    /** An inactive slot with a free index and a free key-material area, or null when all are used. */
    KeySlot allocateSlot(KdfParams kdf);

    /** Records {@code slot} as active in this in-memory header. */
    void activate(KeySlot slot);

    /** Records slot {@code index} as inactive in this in-memory header. */
    void deactivate(int index);

    /** Writes the header (both copies for LUKS2) and forces it to stable storage. */
    void write(FileChannel channel) throws IOException;

    /** Reads whichever version the image holds. */
    static LuksHeader read(Path image, FileChannel channel) throws IOException {
        ByteBuffer start = ByteBuffer.allocate(8);
        readFully(image, channel, start, 0, "LUKS header");
        for (int i = 0; i < MAGIC.length; i++) {
            if (start.get(i) != MAGIC[i]) {
                throw new LuksException(image, "magic", "is not \"LUKS\\xba\\xbe\": not a LUKS image");
            }
        }
        int version = start.getShort(6) & 0xffff;
        return switch (version) {
            case 1 -> Luks1Header.read(image, channel);
            case 2 -> Luks2Header.read(image, channel);
            default -> throw new LuksException(image, "version", "is " + version + "; only LUKS 1 and 2 exist");
        };
    }

    /** Reads exactly {@code buf.remaining()} bytes at {@code position} or fails naming what was read. */
    static void readFully(Path image, FileChannel channel, ByteBuffer buf, long position, String what) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = channel.read(buf, pos);
            if (n < 0) {
                throw new LuksException(image, what, "is truncated: the file ends at byte " + pos);
            }
            pos += n;
        }
        buf.flip();
    }

    /** Writes all of {@code buf} at {@code position}. */
    static void writeFully(FileChannel channel, ByteBuffer buf, long position) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            pos += channel.write(buf, pos);
        }
    }

    /** A NUL-padded fixed-size ASCII field. */
    static String cString(ByteBuffer buf, int offset, int length) {
        int end = 0;
        while (end < length && buf.get(offset + end) != 0) {
            end++;
        }
        byte[] b = new byte[end];
        buf.get(offset, b);
        return new String(b, StandardCharsets.US_ASCII);
    }

    static void putCString(ByteBuffer buf, int offset, int length, String value) {
        byte[] b = value.getBytes(StandardCharsets.US_ASCII);
        if (b.length >= length) {
            throw new IllegalArgumentException("\"" + value + "\" does not fit a " + length + "-byte field");
        }
        buf.put(offset, b);
        for (int i = b.length; i < length; i++) {
            buf.put(offset + i, (byte) 0);
        }
    }
}
