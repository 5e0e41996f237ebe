package io.vhostblk.qemutests;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vhostblk.modules.crypt.FormatOptions;
import io.vhostblk.modules.crypt.KdfOptions;
import io.vhostblk.modules.crypt.LuksVersion;
import io.vhostblk.modules.crypt.LuksVolume;
import io.vhostblk.modules.crypt.Secret;
import io.vhostblk.modules.crypt.UnlockedVolume;
import io.vhostblk.testsupport.ServerJvm;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Guests on LUKS-encrypted images served by vhost-blk with the crypt module loaded from its jar through a
 * policy: what the guest writes is on the host only as ciphertext, reads back as written, and an image made and
 * filled by {@code qemu-img} (QEMU's own LUKS driver) reads in the guest as qemu-img wrote it.
 */
class EncryptedGuestTest {
    private static final Duration GUEST_TIMEOUT = Duration.ofSeconds(180);
    private static final Path TARGET = Path.of("target").toAbsolutePath();
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    static final long DISK = 32 * MIB;
    /** Where a LUKS1 payload starts with a 512-bit key (cryptsetup aligns it to 2 MiB). */
    private static final long LUKS1_PAYLOAD_OFFSET = 2 * MIB;
    /** The passphrase, as a key file holds it (no newline: vhost-blk, cryptsetup and QEMU read files whole). */
    static final byte[] PASSPHRASE = "vhost-blk crypt test passphrase".getBytes(StandardCharsets.US_ASCII);

    /** Writes of every shape through the encrypting path: pool-sized, lane-sized, WRITE_ZEROES, FLUSH. */
    static final GuestPlan ENCRYPTED_RW = encryptedReadWrite();
    /** A LUKS2 volume with 4096-byte encryption sectors: the guest must see 4 KiB logical blocks. */
    static final GuestPlan LUKS2_4K = luks2FourKiB();
    /** Reads what qemu-img wrote through QEMU's LUKS driver, then writes for qemu-img to read back. */
    static final GuestPlan QEMU_IMG_LUKS = qemuImgLuks();

    private static RunLock runLock;
    private static GuestKernel kernel;
    private static Path initramfs;

    private static GuestPlan encryptedReadWrite() {
        GuestPlan p = GuestPlan.writable("crypt-rw", DISK, 1, 1)
                .sysfs("size-is-payload", "size", "eq", Long.toString(DISK / 512))
                .writeBack("write-back-cache");
        p.write("dio-512", 512, MIB + 512, 32 * KIB, 0)
                .read("dio-512-read", (int) (32 * KIB), MIB + 512, 32 * KIB, 0);
        p.write("dio-4k", 4096, 2 * MIB + 1536, 256 * KIB, 100_000)
                .read("dio-4k-read", 512, 2 * MIB + 1536, 256 * KIB, 100_000);
        // 1 MiB requests fill the fast path exactly; the guest may merge into larger ones (the lane).
        p.write("dio-1m", (int) MIB, 4 * MIB + 512, 6 * MIB, MIB + 7)
                .read("dio-1m-read", (int) (64 * KIB), 4 * MIB + 512, 6 * MIB, MIB + 7);
        p.flushedWrite("flush", (int) (64 * KIB), 12 * MIB, MIB, 2 * MIB + 11)
                .read("flush-read", (int) (64 * KIB), 12 * MIB, MIB, 2 * MIB + 11);
        // WRITE_ZEROES inside written data: must read back as zeros, so encrypted zeros, not zeros.
        p.write("zero-region", (int) MIB, 16 * MIB, 2 * MIB, 3 * MIB + 3)
                .zeroOut("zeroout", 16 * MIB + 1536, 512 * KIB + 1024)
                .readZeros("zeroout-reads-zeros", 512, 16 * MIB + 1536, 512 * KIB + 1024)
                .read("zeroout-neighbour", 512, 16 * MIB, 1536, 3 * MIB + 3);
        p.write("dio-end-of-disk", (int) (128 * KIB), DISK - 128 * KIB, 128 * KIB, 7 * MIB)
                .read("dio-end-of-disk-read", 4096, DISK - 128 * KIB, 128 * KIB, 7 * MIB)
                .fsync("final-fsync");
        return p;
    }

    private static GuestPlan luks2FourKiB() {
        GuestPlan p = GuestPlan.writable("crypt-luks2-4k", DISK, 1, 1)
                .sysfs("logical-block-4k", "queue/logical_block_size", "eq", "4096")
                .sysfs("size-is-payload", "size", "eq", Long.toString(DISK / 512));
        p.write("dio-4k", 4096, MIB, 256 * KIB, 0)
                .read("dio-4k-read", (int) (64 * KIB), MIB, 256 * KIB, 0);
        p.write("dio-1m", (int) MIB, 8 * MIB, 3 * MIB, MIB + 7)
                .read("dio-1m-read", 4096, 8 * MIB, 3 * MIB, MIB + 7)
                .fsync("final-fsync");
        return p;
    }

    private static GuestPlan qemuImgLuks() {
        GuestPlan p = GuestPlan.writable("crypt-qemu-img", DISK, 1, 1)
                .prefill(0, 4 * MIB, 0)
                .prefill(20 * MIB + 512, 3 * MIB, 4 * MIB + 5);
        p.read("qemu-img-head", (int) (64 * KIB), 0, 4 * MIB, 0)
                .read("qemu-img-middle", 512, 20 * MIB + 512, 3 * MIB, 4 * MIB + 5);
        p.write("guest-write", 4096, 10 * MIB + 1024, 512 * KIB, 6 * MIB)
                .read("guest-write-read", (int) (512 * KIB), 10 * MIB + 1024, 512 * KIB, 6 * MIB)
                .fsync("final-fsync");
        return p;
    }

    @BeforeAll
    static void prepareGuest() throws Exception {
        runLock = RunLock.acquire(TARGET.resolve("qemu-runs.lock"), Duration.ofMinutes(10));
        HostTools.program("qemu-system-x86_64", "qemu-system-x86");
        kernel = GuestKernel.find();
        initramfs = Initramfs.build(TARGET.resolve("guest-crypt"), kernel, List.of(ENCRYPTED_RW, LUKS2_4K, QEMU_IMG_LUKS));
    }

    @AfterAll
    static void releaseLock() throws IOException {
        if (runLock != null) {
            runLock.close();
        }
    }

    /** On split and on packed virtqueues: the crypt module does not know which ring is in use. */
    @ParameterizedTest(name = "{0}")
    @EnumSource(QemuGuest.Ring.class)
    void guestDataIsStoredEncryptedAndReadsBack(QemuGuest.Ring ring) throws Exception {
        GuestPlan plan = ENCRYPTED_RW;
        Path runDir = freshRunDir(plan, ring);
        Path image = runDir.resolve("disk.luks");
        Path key = keyFile(runDir);
        try (Secret s = Secret.copyOf(PASSPHRASE)) {
            LuksVolume.format(image, s, new FormatOptions(LuksVersion.LUKS1, 512, DISK, KdfOptions.pbkdf2(1000)));
        }
        // As after 'dd if=/dev/zero of=/dev/mapper/...': the payload decrypts to zeros, so the whole image can
        // be compared with the plan's model.
        try (UnlockedVolume v = unlock(image)) {
            writePlaintext(v, 0, new byte[(int) DISK]);
        }
        List<String> problems = boot(plan, runDir, image, key, ring, (volume, check) -> {
            GuestPlan.Region r = plan.flushedWrite(check);
            if (r == null) {
                return "no flushed write named " + check;
            }
            byte[] want = Arrays.copyOfRange(TestPattern.bytes(), (int) r.patternOffset(), (int) (r.patternOffset() + r.length()));
            return Arrays.equals(want, readPlaintext(volume, r.diskOffset(), (int) r.length()))
                    ? null : "the flushed write does not decrypt to what the guest wrote";
        });
        byte[] raw = Files.readAllBytes(image);
        try (UnlockedVolume v = unlock(image)) {
            byte[] plain = readPlaintext(v, 0, (int) DISK);
            String diff = firstDifference(plan.expectedImage(), plain);
            if (diff != null) {
                problems.add("decrypted payload differs from what the guest wrote: " + diff);
            }
        }
        // No plaintext of any written region anywhere in the image file.
        for (long patternOffset : new long[] {0, 100_000, MIB + 7, 2 * MIB + 11, 3 * MIB + 3 + 4096, 7 * MIB}) {
            byte[] sample = Arrays.copyOfRange(TestPattern.bytes(), (int) patternOffset + 4096, (int) patternOffset + 4096 + 64);
            long at = indexOf(raw, sample);
            if (at >= 0) {
                problems.add("plaintext of the pattern at " + patternOffset + " found in the image file at byte " + at);
            }
        }
        report(plan, problems, runDir);
    }

    @Test
    void luks2WithFourKiBSectorsServesA4KiBBlockGuest() throws Exception {
        GuestPlan plan = LUKS2_4K;
        Path runDir = freshRunDir(plan, QemuGuest.Ring.SPLIT);
        Path image = runDir.resolve("disk.luks2");
        Path key = keyFile(runDir);
        try (Secret s = Secret.copyOf(PASSPHRASE)) {
            LuksVolume.format(image, s, new FormatOptions(LuksVersion.LUKS2, 4096, DISK, KdfOptions.pbkdf2(1000)));
        }
        try (UnlockedVolume v = unlock(image)) {
            writePlaintext(v, 0, new byte[(int) DISK]);
        }
        List<String> problems = boot(plan, runDir, image, key, QemuGuest.Ring.SPLIT, (v, check) -> "unexpected SYNCED " + check);
        try (UnlockedVolume v = unlock(image)) {
            String diff = firstDifference(plan.expectedImage(), readPlaintext(v, 0, (int) DISK));
            if (diff != null) {
                problems.add("decrypted payload differs from what the guest wrote: " + diff);
            }
        }
        report(plan, problems, runDir);
    }

    @Test
    void imageMadeAndFilledByQemuImgReadsInTheGuest() throws Exception {
        GuestPlan plan = QEMU_IMG_LUKS;
        Path qemuImg = HostTools.program("qemu-img", "qemu-utils");
        Path runDir = freshRunDir(plan, QemuGuest.Ring.SPLIT);
        Path image = runDir.resolve("disk.luks");
        Path key = keyFile(runDir);
        Path plainIn = runDir.resolve("plain-in.raw");
        DiskImage.create(plainIn, plan);
        String secret = "secret,id=sec0,file=" + key;
        // The LUKS1 header comes from cryptsetup with a fixed PBKDF2 iteration count: qemu-img create
        // times PBKDF2 with the thread's CPU clock and fails where that clock reads 0 ms. qemu-img then
        // encrypts every payload byte, so the guest reads qemu's ciphertext.
        try (var ch = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(1), LUKS1_PAYLOAD_OFFSET + DISK - 1);
        }
        HostTools.run(List.of(HostTools.program("cryptsetup", "cryptsetup-bin").toString(), "luksFormat", "--batch-mode",
                "--type", "luks1", "--cipher", "aes-xts-plain64", "--key-size", "512", "--hash", "sha256",
                "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                "--align-payload", Long.toString(LUKS1_PAYLOAD_OFFSET / 512), "--key-file", key.toString(), image.toString()), 60);
        HostTools.run(List.of(qemuImg.toString(), "convert", "-n", "--object", secret, "-f", "raw", plainIn.toString(),
                "--target-image-opts", "driver=luks,key-secret=sec0,file.filename=" + image), 120);
        List<String> problems = boot(plan, runDir, image, key, QemuGuest.Ring.SPLIT, (v, check) -> "unexpected SYNCED " + check);
        // And the other way: qemu-img decrypts what the guest wrote through vhost-blk.
        Path plainOut = runDir.resolve("plain-out.raw");
        HostTools.run(List.of(qemuImg.toString(), "convert", "--object", secret, "--image-opts",
                "driver=luks,key-secret=sec0,file.filename=" + image, "-O", "raw", plainOut.toString()), 120);
        byte[] expected = plan.expectedImage();
        byte[] decrypted = Files.readAllBytes(plainOut);
        for (long[] range : new long[][] {{0, 4 * MIB}, {20 * MIB + 512, 3 * MIB}, {10 * MIB + 1024, 512 * KIB}}) {
            String diff = firstDifference(Arrays.copyOfRange(expected, (int) range[0], (int) (range[0] + range[1])),
                    Arrays.copyOfRange(decrypted, (int) range[0], (int) (range[0] + range[1])));
            if (diff != null) {
                problems.add("qemu-img reads bytes " + range[0] + "+" + range[1] + " differently: " + diff);
            }
        }
        report(plan, problems, runDir);
    }

    /** Host-side check when the guest announces a flushed write; gets the unlocked image. */
    private interface SyncedCheck {
        String verify(UnlockedVolume volume, String check) throws IOException;
    }

    /** Boots the plan against vhost-blk with the crypt module; returns the problems found. */
    private static List<String> boot(GuestPlan plan, Path runDir, Path image, Path key, QemuGuest.Ring ring,
                                     SyncedCheck synced) throws Exception {
        Path policy = CryptModule.writePolicy(runDir.resolve("policy.conf"), plan.name(), key);
        List<String> problems = new ArrayList<>();
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "vbc-");
        try {
            ExportSpec spec = new ExportSpec(image, Files.size(image), plan.queues(), false,
                    socketDir.resolve("blk.sock"), runDir.resolve("backend.log"));
            try (CryptServer server = new CryptServer(spec, policy); UnlockedVolume volume = unlock(image)) {
                GuestRun run = QemuGuest.run(new QemuGuest.Config(kernel, initramfs, plan, spec.socket(), runDir, GUEST_TIMEOUT,
                                ring),
                        check -> {
                            try {
                                return synced.verify(volume, check);
                            } catch (IOException e) {
                                return "cannot read " + image + ": " + e;
                            }
                        });
                StorageBackend.Exit exit = server.stop();
                run.problems(plan.checks()).forEach(p -> problems.add("guest: " + p));
                run.hostProblems().forEach(p -> problems.add("image file after the guest's FLUSH of " + p));
                if (!exit.clean()) {
                    problems.add("vhost-blk must exit with status 0 within " + ProcessBackend.STOP_TIMEOUT.toSeconds()
                            + " s of SIGTERM, but it " + exit);
                }
                String ringProblem = VhostBlkServer.ringProblem(Backend.VHOST_BLK, ring, spec.log(), plan.queues());
                if (ringProblem != null) {
                    problems.add(ringProblem);
                }
                if (!Logs.tail(spec.log(), 400).contains("module=crypt")) {
                    problems.add("the server log does not show the crypt module attached");
                }
                if (!problems.isEmpty()) {
                    problems.add("serial tail:\n" + run.serialTail(30) + "\n--- vhost-blk log (" + spec.log() + ") ---\n"
                            + server.logTail(40));
                }
            }
        } finally {
            TestDirs.deleteRecursively(socketDir);
        }
        return problems;
    }

    /** vhost-blk serve with a policy, on a class path without the crypt module: it must come from its jar. */
    private static final class CryptServer extends ProcessBackend {
        CryptServer(ExportSpec spec, Path policy) {
            super("vhost-blk server (crypt)", spec, command(spec, policy));
        }

        private static List<String> command(ExportSpec spec, Path policy) {
            String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
            String classPath = CryptModule.serverClassPath();
            return List.of(java, ServerJvm.OPTIONS, "-cp", classPath, VhostBlkServer.MAIN_CLASS, "serve",
                    "--socket", spec.socket().toString(), "--disk", spec.image().toString(),
                    "--queues", Integer.toString(spec.queues()), "--policy", policy.toString());
        }
    }

    private static Path freshRunDir(GuestPlan plan, QemuGuest.Ring ring) throws IOException {
        Path runDir = TARGET.resolve("qemu-runs").resolve(plan.name() + "-vhost_blk-" + ring.name().toLowerCase());
        TestDirs.deleteRecursively(runDir);
        Files.createDirectories(runDir);
        return runDir;
    }

    static Path keyFile(Path runDir) throws IOException {
        return Files.write(runDir.resolve("passphrase"), PASSPHRASE);
    }

    static UnlockedVolume unlock(Path image) throws IOException {
        try (Secret s = Secret.copyOf(PASSPHRASE)) {
            return LuksVolume.unlock(image, s);
        }
    }

    static void writePlaintext(UnlockedVolume v, long guestOffset, byte[] plain) throws IOException {
        byte[] c = new byte[plain.length];
        v.cipher().encrypt(guestOffset / 512, MemorySegment.ofArray(plain), MemorySegment.ofArray(c), v.sectorSize());
        try (FileChannel ch = FileChannel.open(v.image(), StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(c);
            while (b.hasRemaining()) {
                ch.write(b, v.payloadOffset() + guestOffset + b.position());
            }
        }
    }

    static byte[] readPlaintext(UnlockedVolume v, long guestOffset, int length) throws IOException {
        byte[] data = new byte[length];
        try (FileChannel ch = FileChannel.open(v.image(), StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.wrap(data);
            while (b.hasRemaining()) {
                if (ch.read(b, v.payloadOffset() + guestOffset + b.position()) < 0) {
                    break;
                }
            }
        }
        MemorySegment seg = MemorySegment.ofArray(data);
        v.cipher().decrypt(guestOffset / 512, seg, seg, v.sectorSize());
        return data;
    }

    static String firstDifference(byte[] expected, byte[] actual) {
        if (expected.length != actual.length) {
            return "length " + actual.length + ", expected " + expected.length;
        }
        int i = Arrays.mismatch(expected, actual);
        return i < 0 ? null : "first difference at byte " + i;
    }

    private static long indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            if (haystack[i] != needle[0]) {
                continue;
            }
            for (int j = 1; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static void report(GuestPlan plan, List<String> problems, Path runDir) {
        assertTrue(problems.isEmpty(), "plan '" + plan.name() + "' on an encrypted image (" + runDir + "): "
                + problems.size() + " problem(s)\n  - " + String.join("\n  - ", problems));
    }
}
