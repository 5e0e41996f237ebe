package io.vhostblk.modules.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CacheFileTest {

    @TempDir
    Path dir;

    @Test
    void aNewFileIsFormattedAndReopens() throws Exception {
        Path f = dir.resolve("c");
        CacheFile.Opened first = CacheFile.open(f, 4 << 20, 4096, "/images/a.img", 1 << 30);
        assertTrue(first.formatted());
        assertNull(first.table());
        CacheFile.Opened again = CacheFile.open(f, -1, 4096, "/images/a.img", 1 << 30);
        assertTrue(!again.formatted());
        assertEquals(first.header().uuid(), again.header().uuid());
        assertEquals(first.header().slots(), again.header().slots());
        assertTrue(again.header().slotOffset((int) again.header().slots()) <= Files.size(f));
    }

    @Test
    void aCacheOfAnotherVolumeIsRefused() throws Exception {
        Path f = dir.resolve("c");
        CacheFile.open(f, 4 << 20, 4096, "/images/a.img", 1 << 30);
        CacheException e = assertThrows(CacheException.class, () -> CacheFile.open(f, -1, 4096, "/images/b.img", 1 << 30));
        assertTrue(e.getMessage().contains("belongs to volume '/images/a.img'"), e.getMessage());
        e = assertThrows(CacheException.class, () -> CacheFile.open(f, -1, 4096, "/images/a.img", 2L << 30));
        assertTrue(e.getMessage().contains("belongs to volume"), e.getMessage());
        e = assertThrows(CacheException.class, () -> CacheFile.open(f, -1, 8192, "/images/a.img", 1 << 30));
        assertTrue(e.getMessage().contains("4096-byte blocks"), e.getMessage());
    }

    @Test
    void aTornHeaderIsRefused() throws Exception {
        Path f = dir.resolve("c");
        CacheFile.open(f, 4 << 20, 4096, "v", 1 << 30);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(1000);
            raf.write(new byte[]{1, 2, 3}); // half a header write: the checksum no longer matches
        }
        CacheException e = assertThrows(CacheException.class, () -> CacheFile.open(f, -1, 4096, "v", 1 << 30));
        assertTrue(e.getMessage().contains("torn or corrupt"), e.getMessage());
    }

    @Test
    void aFileThatIsNoCacheIsNotOverwritten() throws Exception {
        Path f = dir.resolve("c");
        Files.write(f, "some file system".getBytes());
        CacheException e = assertThrows(CacheException.class, () -> CacheFile.open(f, 4 << 20, 4096, "v", 1 << 30));
        assertTrue(e.getMessage().contains("not a vhost-blk cache device"), e.getMessage());
        assertEquals("some file system", Files.readString(f).substring(0, 16));
    }

    @Test
    void offlineFlushWritesDirtyBlocksToTheImageAndEmptiesTheTable() throws Exception {
        Path f = dir.resolve("c");
        Path image = dir.resolve("img");
        Files.write(image, new byte[64 * 4096]);
        CacheHeader h = CacheFile.open(f, 4 << 20, 4096, image.toString(), 64 * 4096).header();
        // A write-back cache as a crash leaves it: block 5 dirty in slot 2 (entry committed, data written).
        SlotEntry entries = new SlotEntry();
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(h.metadataOffset() + 2 * CacheHeader.ENTRY);
            raf.write(entries.encode(5, 3));
            raf.seek(h.slotOffset(2));
            byte[] data = new byte[4096];
            java.util.Arrays.fill(data, (byte) 0x5a);
            raf.write(data);
        }
        CacheException refused = assertThrows(CacheException.class, () -> CacheFile.format(f, -1, 4096, "other", 1 << 20));
        assertTrue(refused.getMessage().contains("holds 1 dirty blocks"), refused.getMessage());
        assertEquals(1, CacheFile.flushTo(f, image, image.toString()));
        byte[] img = Files.readAllBytes(image);
        assertEquals(0x5a, img[5 * 4096]);
        assertEquals(0x5a, img[6 * 4096 - 1]);
        assertEquals(0, img[4 * 4096]);
        CacheFile.Opened after = CacheFile.read(f);
        assertEquals(0, SlotTable.recover(after.header(), after.table()).dirtyCount());
        assertEquals(0, CacheFile.flushTo(f, image, image.toString()));
    }

    @Test
    void aTornEntryIsStaleNotDirty() {
        CacheHeader h = new CacheHeader(4096, 8, 1 << 20, java.util.UUID.randomUUID(), "v");
        byte[] table = new byte[(int) h.metadataBytes()];
        SlotEntry entries = new SlotEntry();
        System.arraycopy(entries.encode(3, 1), 0, table, 0, 16);
        System.arraycopy(entries.encode(3, 2), 0, table, 16, 16);
        System.arraycopy(entries.encode(4, 2), 0, table, 32, 16);
        table[32 + 13] ^= 1; // slot 2's checksum is wrong
        SlotTable t = SlotTable.recover(h, table);
        assertEquals(-1, t.dirtyBlock()[0], "the older entry for block 3 loses");
        assertTrue(t.stale()[0]);
        assertEquals(3, t.dirtyBlock()[1]);
        assertEquals(-1, t.dirtyBlock()[2]);
        assertTrue(t.stale()[2]);
        assertEquals(1, t.dirtyCount());
        assertEquals(3, t.nextSeq());
    }
}
