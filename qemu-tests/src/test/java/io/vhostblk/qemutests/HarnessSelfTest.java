package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Checks the harness's own pieces without booting anything, so a guest failure is never a harness bug in disguise. */
class HarnessSelfTest {
    @TempDir
    Path dir;

    @Test
    void cpioArchiveIsNewcWithAlignedEntriesAndTrailer() throws Exception {
        byte[] archive = new CpioArchive()
                .file("/a/b/file", 0644, "hello".getBytes(StandardCharsets.US_ASCII))
                .symlink("/bin/sh", "busybox")
                .charDevice("/dev/console", 5, 1)
                .toBytes();
        List<String> names = new ArrayList<>();
        int at = 0;
        while (true) {
            String header = new String(archive, at, 110, StandardCharsets.US_ASCII);
            assertEquals("070701", header.substring(0, 6), "magic at " + at);
            int mode = field(header, 1);
            int fileSize = field(header, 6);
            int nameSize = field(header, 11);
            String name = new String(archive, at + 110, nameSize - 1, StandardCharsets.US_ASCII);
            names.add(name);
            int data = align(at + 110 + nameSize);
            if (name.equals("file") || name.equals("a/b/file")) {
                assertEquals(0100644, mode);
                assertEquals("hello", new String(archive, data, fileSize, StandardCharsets.US_ASCII));
            }
            if (name.equals("dev/console")) {
                assertEquals(0020600, mode);
                assertEquals(5, field(header, 9));
                assertEquals(1, field(header, 10));
            }
            at = align(data + fileSize);
            if (name.equals("TRAILER!!!")) {
                break;
            }
        }
        assertEquals(archive.length, at, "nothing after the trailer");
        assertEquals(List.of("a", "a/b", "a/b/file", "bin", "bin/sh", "dev", "dev/console", "TRAILER!!!"), names,
                "parents precede their entries");
    }

    @Test
    void imageComparisonNamesTheOperationBehindEachDifference() throws Exception {
        GuestPlan plan = GuestPlan.writable("t", 1 << 20, 1, 1)
                .write("first", 4096, 8192, 8192, 100)
                .zeroOut("hole", 12288, 512);
        Path image = dir.resolve("disk.img");
        DiskImage.create(image, plan);
        byte[] expected = plan.expectedImage();
        Files.write(image, expected);
        assertNull(DiskImage.compare(image, expected, plan));

        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.seek(9000);
            f.write(expected[9000] ^ 1);
            f.seek(12288 + 7);
            f.write(1);
            f.seek(600_000);
            f.write(1);
        }
        String why = DiskImage.compare(image, expected, plan);
        assertNotNull(why);
        assertTrue(why.startsWith("3 of 2048 sectors differ"), why);
        assertTrue(why.contains("[8704, 9216) written by first"), why);
        assertTrue(why.contains("[12288, 12800) zeroed by hole"), why);
        assertTrue(why.contains("never written (must read as zeros)"), why);
    }

    @Test
    void flushedRangeCheckSeesMissingData() throws Exception {
        GuestPlan plan = GuestPlan.writable("t", 1 << 20, 1, 1).flushedWrite("f", 4096, 4096, 4096, 7);
        Path image = dir.resolve("disk.img");
        DiskImage.create(image, plan);
        assertNotNull(DiskImage.compareRange(image, plan.flushedWrite("f")));
        Files.write(image, plan.expectedImage());
        assertNull(DiskImage.compareRange(image, plan.flushedWrite("f")));
    }

    @Test
    void guestRunReportsFailuresMissingChecksAndNoDone() {
        GuestRun ok = run(0, false, "VBTEST PASS device 1 sectors", "junk VBTEST PASS capacity", "VBTEST DONE");
        assertEquals(List.of(), ok.problems(List.of("device", "capacity")));

        GuestRun bad = run(0, false, "VBTEST PASS device", "VBTEST FAIL capacity wrong size");
        List<String> problems = bad.problems(List.of("device", "capacity", "read"));
        assertEquals(3, problems.size(), problems.toString());
        assertTrue(problems.get(0).contains("never printed VBTEST DONE"), problems.toString());
        assertEquals("VBTEST FAIL capacity wrong size", problems.get(1));
        assertEquals("checks never reported: read", problems.get(2));

        assertTrue(run(-1, true, "VBTEST DONE").problems(List.of()).getFirst().contains("killed"));
        assertTrue(run(1, false, "VBTEST DONE").problems(List.of()).getFirst().contains("status 1"));
    }

    @Test
    void problemsFailOnlyWhenSomethingWasNotedAndNameEveryOne() throws Exception {
        GuestPlan plan = GuestPlan.writable("t", 1 << 20, 1, 1);
        List<String> passed = new ArrayList<>(plan.checks().stream().map(c -> "VBTEST PASS " + c).toList());
        passed.add("VBTEST DONE");
        Problems none = new Problems();
        none.addIfAny("image: ", null);
        none.guest("guest: ", run(0, false, passed.toArray(String[]::new)), plan);
        assertTrue(none.isEmpty(), none.list().toString());
        none.failIfAny("nothing", () -> "no evidence is asked for");

        Problems some = new Problems();
        some.addIfAny("image: ", "sector 3 differs");
        passed.add(0, "VBTEST FAIL read bad data");
        some.guest("guest: ", run(1, false, passed.toArray(String[]::new)), plan);
        some.stop("the server", new StubBackend(new StorageBackend.Exit(3, false, false)));
        some.stop("the clean server", new StubBackend(new StorageBackend.Exit(0, false, false)));
        AssertionError failure = assertThrows(AssertionError.class, () -> some.failIfAny("plan t", () -> "EVIDENCE"));
        String message = failure.getMessage();
        assertTrue(message.startsWith("plan t: 4 problem(s)"), message);
        assertTrue(message.contains("image: sector 3 differs"), message);
        assertTrue(message.contains("guest: QEMU exited with status 1"), message);
        assertTrue(message.contains("guest: VBTEST FAIL read bad data"), message);
        assertTrue(message.contains("the server must exit with status 0"), message);
        assertTrue(!message.contains("the clean server"), message);
        assertTrue(message.endsWith("EVIDENCE"), message);
    }

    /** A back-end that only reports how it stopped. */
    private record StubBackend(StorageBackend.Exit exit) implements StorageBackend {
        @Override
        public String name() {
            return "stub";
        }

        @Override
        public Path socket() {
            return Path.of("stub.sock");
        }

        @Override
        public Exit stop() {
            return exit;
        }

        @Override
        public String logTail(int lines) {
            return "";
        }

        @Override
        public void close() {
        }
    }

    @Test
    void planRejectsRequestsDirectIoCannotMake() {
        GuestPlan plan = GuestPlan.writable("t", 1 << 20, 1, 1);
        assertThrows(IllegalArgumentException.class, () -> plan.write("a", 4096, 100, 4096, 0));
        assertThrows(IllegalArgumentException.class, () -> plan.write("b", 4096, 0, 1000, 0));
        assertThrows(IllegalArgumentException.class, () -> plan.write("c", 4096, (1 << 20) - 2048, 4096, 0));
        assertThrows(IllegalArgumentException.class, () -> plan.write("d", 4096, 0, 4096, TestPattern.SIZE - 1));
        assertThrows(IllegalArgumentException.class, () -> plan.backgroundWrite("e", 1, 4096, 0, 4096, 0));
        plan.write("ok", 512, 512, 512, 0);
        assertThrows(IllegalArgumentException.class, () -> plan.write("ok", 512, 512, 512, 0));
    }

    @Test
    void kernelVersionsCompareNumerically() {
        assertTrue(GuestKernel.compareVersions("6.10.0-1-amd64", "6.9.0-3-amd64") > 0);
        assertTrue(GuestKernel.compareVersions("6.1.0-56-amd64", "6.1.0-9-amd64") > 0);
        assertEquals(0, GuestKernel.compareVersions("6.1.0-56-amd64", "6.1.0-56-amd64"));
    }

    private static GuestRun run(int exit, boolean timedOut, String... serial) {
        return new GuestRun(List.of(serial), exit, timedOut, Duration.ofSeconds(1), Map.of(),
                Path.of("serial.log"), Path.of("qemu.log"), List.of("qemu"));
    }

    private static int field(String header, int index) {
        return Integer.parseInt(header.substring(6 + index * 8, 14 + index * 8), 16);
    }

    private static int align(int offset) {
        return (offset + 3) & ~3;
    }
}
