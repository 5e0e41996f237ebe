package io.vhostblk.bench;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The crash contract as {@link CrashWorkload} checks one sector. */
class CrashWorkloadTest {
    private final CrashWorkload load = new CrashWorkload(16, 4096, 4, 8, 1);
    private final MemorySegment block = Arena.ofAuto().allocate(4096);

    @Test
    void anyGenerationBetweenTheFlushedAndTheNewestIsAllowed() {
        load.know(3, 2, 5);
        for (long g = 2; g <= 5; g++) {
            load.fill(block, 3, g);
            assertNull(load.checkSector(3, block, 0));
            assertNull(load.checkSector(3, block, 3584));
        }
    }

    @Test
    void olderThanFlushedNewerThanIssuedOrZerosAfterAFlushAreViolations() {
        load.know(3, 2, 5);
        load.fill(block, 3, 1);
        assertTrue(load.checkSector(3, block, 0).contains("generation 1, expected 2..5"));
        load.fill(block, 3, 6);
        assertTrue(load.checkSector(3, block, 512).contains("generation 6"));
        block.fill((byte) 0);
        assertTrue(load.checkSector(3, block, 0).contains("zeros"));
        load.know(4, 0, 1);
        assertNull(load.checkSector(4, block, 0), "a never-flushed block may still read as zeros");
    }

    @Test
    void anotherBlocksDataOrGarbageIsAViolation() {
        load.know(3, 1, 1);
        load.fill(block, 7, 1);
        assertTrue(load.checkSector(3, block, 0).contains("data of byte offset " + 7 * 4096));
        load.fill(block, 3, 1);
        block.set(ValueLayout.JAVA_BYTE, 1000, (byte) 0x77);
        assertTrue(load.checkSector(3, block, 512).contains("mixed or garbage"));
        assertNull(load.checkSector(3, block, 0), "the other sectors are intact");
    }

    @Test
    void refusesShapesThatCannotWork() {
        assertThrows(IllegalArgumentException.class, () -> new CrashWorkload(2, 4096, 4, 8, 1));
        assertThrows(IllegalArgumentException.class, () -> new CrashWorkload(16, 1000, 4, 8, 1));
    }
}
