package io.vhostblk.modules.crypt;

import java.lang.foreign.MemorySegment;

/**
 * Runs an {@link XtsAes256} over scattered iovec buffers: whole sectors inside one buffer go straight through
 * the cipher; a sector split across buffers goes through a one-sector scratch. One per queue (the cipher and
 * the scratch are not thread-safe); allocates nothing per request.
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
     * Encrypts the next {@code length} bytes of {@code from} (left unchanged: guest memory of a write) into
     * {@code dst} at {@code dstOffset}. {@code firstSector} is the 512-byte IV sector of the first byte.
     * Returns false when the buffers hold fewer than {@code length} bytes.
     */
    boolean encrypt(IovCursor from, long firstSector, long length, MemorySegment dst, long dstOffset) {
        long done = 0;
        while (done < length) {
            long sector = firstSector + done / XtsAes256.IV_SECTOR;
            long avail = from.contiguous();
            long n;
            if (avail >= sectorSize) {
                n = Math.min(avail - avail % sectorSize, length - done);
                cipher.encrypt(sector, IovCursor.ALL, from.address(), dst, dstOffset + done, n, sectorSize);
                from.advance(n);
            } else {
                if (!from.gather(scratch, sectorSize)) {
                    return false;
                }
                n = sectorSize;
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
     * Decrypts the next {@code length} bytes of {@code in} in place (guest memory of a read, which the guest gave
     * us to fill). Returns false when the buffers hold fewer than {@code length} bytes.
     */
    boolean decryptInPlace(IovCursor in, long firstSector, long length) {
        long done = 0;
        while (done < length) {
            long sector = firstSector + done / XtsAes256.IV_SECTOR;
            long avail = in.contiguous();
            long n;
            if (avail >= sectorSize) {
                n = Math.min(avail - avail % sectorSize, length - done);
                long at = in.address();
                cipher.decrypt(sector, IovCursor.ALL, at, IovCursor.ALL, at, n, sectorSize);
                in.advance(n);
            } else {
                int entry = in.entry();
                long offset = in.offsetInEntry();
                if (!in.gather(scratch, sectorSize)) {
                    return false;
                }
                n = sectorSize;
                cipher.decrypt(sector, scratch, 0, scratch, 0, n, sectorSize);
                in.seek(entry, offset);
                in.scatter(scratch, sectorSize);
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
