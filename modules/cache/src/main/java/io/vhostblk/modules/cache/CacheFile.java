package io.vhostblk.modules.cache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A cache device read and written directly with blocking file I/O, for what happens before a cache serves
 * (format, opening with recovery on the setup thread) and for the offline commands ({@code status}, {@code flush}).
 * Serving goes through the io_uring driver instead.
 */
final class CacheFile {

    /** A cache device as opened: its header and its slot table's bytes. */
    record Opened(CacheHeader header, byte[] table, boolean formatted) {
    }

    private CacheFile() {
    }

    /**
     * Opens the cache on {@code file} for {@code volume}: formats a new or all-zero device, otherwise checks that
     * its header is whole and made for this volume, and reads its slot table.
     *
     * @param size bytes to use, or -1 for the file's size (a new file needs a size)
     */
    static Opened open(Path file, long size, int blockSize, String volume, long backingCapacity) throws CacheException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long have = deviceSize(ch);
            if (size < 0 && have == 0) {
                throw new CacheException(file + ": a new cache file needs a size (setting size)");
            }
            long use = size < 0 ? have : size;
            if (have < use && Files.isRegularFile(file)) {
                ch.write(ByteBuffer.wrap(new byte[1]), use - 1);
            }
            byte[] raw = readFully(ch, 0, CacheHeader.SIZE);
            CacheHeader h = CacheHeader.decode(raw, file.toString());
            if (h == null) {
                h = CacheHeader.forDevice(use, blockSize, backingCapacity, volume);
                write(ch, h);
                return new Opened(h, null, true);
            }
            h.checkFor(file.toString(), volume, backingCapacity, blockSize);
            return new Opened(h, readTable(ch, h), false);
        } catch (IOException e) {
            throw new CacheException(file + ": cannot open the cache device: " + e.getMessage(), e);
        }
    }

    /** Writes a new header and an empty slot table, durably. */
    static CacheHeader format(Path file, long size, int blockSize, String volume, long backingCapacity) throws CacheException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long have = deviceSize(ch);
            long use = size < 0 ? have : size;
            if (have >= CacheHeader.SIZE) {
                CacheHeader old = decodeOrNull(readFully(ch, 0, CacheHeader.SIZE), file.toString());
                if (old != null) {
                    int dirty = SlotTable.recover(old, readTable(ch, old)).dirtyCount();
                    if (dirty > 0) {
                        throw new CacheException(file + ": holds " + dirty + " dirty blocks of volume '" + old.volume()
                                + "'; write them back first (vhost-blk cache flush " + file + " IMAGE)");
                    }
                }
            }
            if (have < use && Files.isRegularFile(file)) {
                ch.write(ByteBuffer.wrap(new byte[1]), use - 1);
            }
            CacheHeader h = CacheHeader.forDevice(use, blockSize, backingCapacity, volume);
            write(ch, h);
            return h;
        } catch (IOException e) {
            throw new CacheException(file + ": cannot format the cache device: " + e.getMessage(), e);
        }
    }

    private static CacheHeader decodeOrNull(byte[] raw, String where) {
        try {
            return CacheHeader.decode(raw, where);
        } catch (CacheException e) {
            return null; // not a (whole) cache header: nothing to protect
        }
    }

    /** Reads an existing cache device without changing it. */
    static Opened read(Path file) throws CacheException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            CacheHeader h = CacheHeader.decode(readFully(ch, 0, CacheHeader.SIZE), file.toString());
            if (h == null) {
                throw new CacheException(file + ": not formatted (its first block is all zeros)");
            }
            return new Opened(h, readTable(ch, h), false);
        } catch (IOException e) {
            throw new CacheException(file + ": cannot read the cache device: " + e.getMessage(), e);
        }
    }

    /**
     * Writes every dirty block of the cache on {@code file} to {@code image} (at its block's offset), syncs the
     * image, then clears the slot table and syncs the cache: afterwards the image holds every write the cache
     * acknowledged and flushed. Returns how many blocks were written back.
     */
    static int flushTo(Path file, Path image, String volume) throws CacheException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
             FileChannel img = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            CacheHeader h = CacheHeader.decode(readFully(ch, 0, CacheHeader.SIZE), file.toString());
            if (h == null) {
                throw new CacheException(file + ": not formatted (its first block is all zeros)");
            }
            h.checkFor(file.toString(), volume, img.size(), h.blockSize());
            SlotTable t = SlotTable.recover(h, readTable(ch, h));
            int n = 0;
            for (int s = 0; s < h.slots(); s++) {
                long b = t.dirtyBlock()[s];
                if (b >= 0) {
                    byte[] data = readFully(ch, h.slotOffset(s), h.blockSize());
                    writeFully(img, ByteBuffer.wrap(data), b * h.blockSize());
                    n++;
                }
            }
            img.force(true);
            ch.force(true);
            writeFully(ch, ByteBuffer.wrap(new byte[(int) h.metadataBytes()]), h.metadataOffset());
            ch.force(true);
            return n;
        } catch (IOException e) {
            throw new CacheException(file + ": cannot write the cache back to " + image + ": " + e.getMessage(), e);
        }
    }

    /** Writes a slot table durably with blocking I/O (the last commit of a cache whose loop has stopped). */
    static CacheEngine.TableWriter tableWriter(Path file) {
        return new CacheEngine.TableWriter() {
            @Override
            public void syncData() throws IOException {
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
            }

            @Override
            public void writeTable(long offset, byte[] table) throws IOException {
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    writeFully(ch, ByteBuffer.wrap(table), offset);
                    ch.force(true);
                }
            }
        };
    }

    /** The size of a file (a block device reports 0 here: it needs the size setting). */
    private static long deviceSize(FileChannel ch) throws IOException {
        return ch.size();
    }

    private static void write(FileChannel ch, CacheHeader h) throws IOException {
        writeFully(ch, ByteBuffer.wrap(new byte[(int) h.metadataBytes()]), h.metadataOffset());
        ch.force(true);
        // The header last: a device torn before this point is still blank (or keeps its old, refused, header).
        writeFully(ch, ByteBuffer.wrap(h.encode()), 0);
        ch.force(true);
    }

    private static byte[] readTable(FileChannel ch, CacheHeader h) throws IOException {
        return readFully(ch, h.metadataOffset(), (int) h.metadataBytes());
    }

    static byte[] readFully(FileChannel ch, long at, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            int r = ch.read(b, at + b.position());
            if (r < 0) {
                break; // past the end reads as zeros
            }
        }
        return b.array();
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        long pos = at;
        while (b.hasRemaining()) {
            pos += ch.write(b, pos);
        }
    }
}
