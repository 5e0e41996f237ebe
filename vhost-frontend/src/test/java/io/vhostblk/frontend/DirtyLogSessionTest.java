package io.vhostblk.frontend;

import io.vhostblk.drivers.RamDriver;
import io.vhostblk.linux.Libc;
import io.vhostblk.virtio.DirtyLog;
import io.vhostblk.virtio.VirtioBlk;
import io.vhostblk.virtio.GuestRam;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Dirty logging through the protocol, as QEMU turns it on for a live migration: SET_LOG_BASE with
 * a shared bitmap, then SET_FEATURES with VHOST_F_LOG_ALL and rings whose addresses carry
 * VHOST_VRING_F_LOG. Every guest byte the real device writes (read data, status, used ring) must
 * have its page marked; before LOG_ALL nothing is.
 */
class DirtyLogSessionTest {
    private static final int BLOCK = 8192;
    private static final long RAM = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void everyGuestByteTheServerWritesIsLoggedOnceLogAllIsOn() throws Exception {
        Path socket = dir.resolve("blk.sock");
        int logFd = Libc.memfdCreate("dirty-log", Libc.MFD_CLOEXEC);
        long logSize = RAM / DirtyLog.PAGE_SIZE / 8;
        Libc.check("ftruncate", Libc.ftruncate(logFd, logSize), "");
        MemorySegment bitmap = Libc.mmap(logSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, logFd, 0);
        DirtyLog view = new DirtyLog(bitmap);
        try (RamDriver ram = RamDriver.create(1 << 20);
             VhostUserServer server = BlkTestFrontEnd.serve("migrate", socket, ram);
             BlkTestFrontEnd fe = new BlkTestFrontEnd(BLOCK)) {
            fe.connect(socket, 0, true);
            fe.fe.setProtocolFeatures(BlkTestFrontEnd.PROTOCOL
                    | VhostUserProtocol.protocolBit(VhostUserProtocol.PROTOCOL_F_LOG_SHMFD));
            fe.dataOf(0, BLOCK).fill((byte) 0x33);
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_OUT, 0, BLOCK));
            fe.fe.send(VhostUserRequest.SET_LOG_BASE, false,
                    VhostUserMessage.newPayload(16).putLong(logSize).putLong(0).array(), logFd);
            fe.fe.receiveReply(VhostUserRequest.SET_LOG_BASE);
            // A log base alone logs nothing yet.
            fe.dataOf(0, BLOCK).fill((byte) 0);
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, 0, BLOCK));
            for (long gpa = 0; gpa < RAM; gpa += DirtyLog.PAGE_SIZE) {
                assertFalse(view.isDirty(gpa), "page 0x" + Long.toHexString(gpa) + " marked before LOG_ALL");
            }

            fe.fe.setFeatures(BlkTestFrontEnd.FEATURES | VhostUserProtocol.F_LOG_ALL);
            fe.fe.setVringAddr(new VringAddress(0, VringAddress.F_LOG, GuestRam.userAddr(fe.ring.descGpa()),
                    GuestRam.userAddr(fe.ring.usedGpa()), GuestRam.userAddr(fe.ring.availGpa()), fe.ring.usedGpa()));
            fe.dataOf(0, BLOCK).fill((byte) 0);
            byte[] before = fe.ram.at(0, RAM).toArray(ValueLayout.JAVA_BYTE);
            assertEquals(VirtioBlk.S_OK, fe.run(VirtioBlk.T_IN, 0, BLOCK));
            byte[] after = fe.ram.at(0, RAM).toArray(ValueLayout.JAVA_BYTE);
            int changed = 0;
            for (int gpa = 0; gpa < RAM; gpa++) {
                if (before[gpa] != after[gpa]) {
                    changed++;
                    assertTrue(view.isDirty(gpa), "guest byte 0x" + Integer.toHexString(gpa) + " changed, page not marked");
                }
            }
            // The test's own writes (header, avail ring) changed bytes too; the read data alone is BLOCK bytes.
            assertTrue(changed >= BLOCK, changed + " bytes changed");
            assertEquals(0x33, fe.dataOf(0, BLOCK).get(ValueLayout.JAVA_BYTE, BLOCK - 1));
        } finally {
            Libc.munmap(bitmap);
            Libc.close(logFd);
        }
    }
}
