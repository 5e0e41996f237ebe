package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.IoVector;

import java.lang.foreign.MemorySegment;

/**
 * Runs an {@link XtsAes256} over request data ({@link IoVector}): whole sectors inside one contiguous piece
 * go straight through the cipher; a sector split across pieces goes through a one-sector scratch. One per
 * queue (the cipher and the scratch are not thread-safe); allocates nothing per request.
 */
final class SectorCrypt {

    private final XtsAes256 cipher;
    private final int sectorSize;
    private final MemorySegment scratch;

    SectorCrypt(XtsAes256 cipher, int sectorSize, MemorySegment scratch) {
        this.cipher = cipher;
        this.sectorSize = sectorSize;
        this.scratch = scratch;
    }

    int sectorSize() {
        return sectorSize;
    }

    /**
     * Encrypts the next {@code length} bytes at {@code from} (left unchanged: the guest's data of a write) into
     * {@code dst} at {@code dstOffset}. {@code firstSector} is the 512-byte IV sector of the first byte.
     * Returns false when the data holds fewer than {@code length} bytes.
     */
    boolean encrypt(IoVector.Cursor from, long firstSector, long length, MemorySegment dst, long dstOffset) {
        if (from.remaining() < length) {
            return false;
        }
        long done = 0;
        while (done < length) {
            long sector = firstSector + done / XtsAes256.IV_SECTOR;
            long avail = from.contiguous();
            long n;
            if (avail >= sectorSize) {
                n = Math.min(avail - avail % sectorSize, length - done);
                cipher.encrypt(sector, from.segment(), from.segmentOffset(), dst, dstOffset + done, n, sectorSize);
                from.advance(n);
            } else {
                n = sectorSize;
                from.read(scratch, 0, n);
                cipher.encrypt(sector, scratch, 0, dst, dstOffset + done, n, sectorSize);
            }
            done += n;
        }
        return true;
    }

    /** Encrypts {@code length} bytes of {@code buffer} in place (a bounce buffer, never guest memory). */
    void encryptInPlace(MemorySegment buffer, long offset, long firstSector, long length) {
        cipher.encrypt(firstSector, buffer, offset, buffer, offset, length, sectorSize);
    }

    /**
     * Decrypts the next {@code length} bytes at {@code in} in place (the guest's buffers of a read, which it gave
     * us to fill: device-writable). Returns false when the data holds fewer than {@code length} bytes.
     */
    boolean decryptInPlace(IoVector.Cursor in, long firstSector, long length) {
        if (in.remaining() < length) {
            return false;
        }
        long done = 0;
        while (done < length) {
            long sector = firstSector + done / XtsAes256.IV_SECTOR;
            long avail = in.contiguous();
            long n;
            if (avail >= sectorSize) {
                n = Math.min(avail - avail % sectorSize, length - done);
                MemorySegment seg = in.segment();
                long at = in.segmentOffset();
                cipher.decrypt(sector, seg, at, seg, at, n, sectorSize);
                in.advance(n);
            } else {
                n = sectorSize;
                long at = in.position();
                in.read(scratch, 0, n);
                cipher.decrypt(sector, scratch, 0, scratch, 0, n, sectorSize);
                in.seek(at).write(scratch, 0, n);
            }
            done += n;
        }
        return true;
    }

    /** Zeroes the scratch sector (it held plaintext). */
    void wipe() {
        scratch.fill((byte) 0);
    }
}
