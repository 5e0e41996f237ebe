package io.vhostblk.qemutests;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The guest-visible half of the protocol's dynamic features, each in one boot against our server:
 * a live resize through {@code ctl resize} (the guest sees the new size and uses the new end), and
 * memory hotplug through QEMU's monitor (the guest onlines a DIMM and the server's writes of guest
 * read data land in it, which the host checks in the DIMM's own memory).
 */
class HotplugGuestTest {
    private static final long MIB = 1 << 20;
    static final long BOOT_SIZE = 16 * MIB;
    static final long GROWN_SIZE = 32 * MIB;
    /** Boots on a 16 MiB disk that the host grows to 32 MiB under it (also run on RBD by {@code RbdGuestTest}). */
    static final GuestPlan RESIZE = GuestPlan.growing("resize", BOOT_SIZE, GROWN_SIZE)
            .write("before-resize", 4096, 0, MIB, 0)
            .hostResize("resize", GROWN_SIZE)
            .readZeros("grown-part-reads-zeros", 65536, BOOT_SIZE, MIB)
            .write("write-new-end", 65536, GROWN_SIZE - MIB, MIB, MIB)
            .read("read-new-end", 4096, GROWN_SIZE - MIB, MIB, MIB)
            .read("old-data-kept", 65536, 0, MIB, 0);

    /** The DIMM the host plugs: two 128 MiB memory blocks of the guest. */
    private static final long DIMM_SIZE = 256 * MIB;
    /** Where the host puts the marker the guest reads into the hotplugged memory (never part of the pattern). */
    private static final long MARKER_AT = 8 * MIB;
    private static final GuestPlan HOTPLUG = GuestPlan.writable("memhotplug", 16 * MIB, 1, 1)
            .memoryHotplug("hotplug")
            .hotRead("read-into-new-memory", MARKER_AT, MIB)
            .write("write-after-hotplug", 65536, 0, MIB, 0)
            .read("read-after-hotplug", 4096, 0, MIB, 0);

    @RegisterExtension
    static final GuestHarness HARNESS = new GuestHarness("guest-hotplug", Duration.ofSeconds(240),
            () -> List.of(RESIZE, HOTPLUG));

    @Test
    void guestSeesALiveResizeAndWritesAndReadsTheNewEndWithTheDefaultDriver() throws Exception {
        resizeOn("auto");
    }

    @Test
    void liveResizeWithTheFileDriver() throws Exception {
        resizeOn("file");
    }

    private static void resizeOn(String driver) throws Exception {
        Path runDir = GuestHarness.runDir("resize-" + driver);
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, RESIZE);
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(BOOT_SIZE);
        }
        try (SocketDir sockets = SocketDir.create("vb-")) {
            Path control = sockets.resolve("ctl.sock");
            ExportSpec spec = new ExportSpec(image, BOOT_SIZE, 1, false, sockets.resolve("blk.sock"),
                    runDir.resolve("backend.log"), List.of("--driver", driver, "--id", "disk0", "--control", control.toString()));
            try (StorageBackend server = VhostBlkServer.start(spec)) {
                GuestRun run = HARNESS.boot(RESIZE, spec.socket(), runDir, check -> check.equals("resize")
                        ? resize(control, "disk0", GROWN_SIZE) : "no host step named " + check);
                Problems problems = new Problems();
                problems.guest("guest: ", run, RESIZE);
                problems.hostVerdicts("host: ", run);
                problems.addIfAny("image file after the guest powered off: ",
                        DiskImage.compare(image, RESIZE.expectedImage(), RESIZE));
                problems.stop(server);
                if (!server.logTail(400).contains("config change announced: guest notified")) {
                    problems.add("the server log does not show the config change acknowledged by QEMU");
                }
                problems.failIfAny("resize (" + driver + " driver)", () -> Problems.tails(run, 40, server));
            }
        }
    }

    @Test
    void guestIoLandsInAHotpluggedDimm() throws Exception {
        Path runDir = GuestHarness.runDir("memhotplug");
        Path image = runDir.resolve("disk.img");
        DiskImage.create(image, HOTPLUG);
        byte[] marker = new byte[512];
        new Random(0x5eed_d133L).nextBytes(marker);
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.seek(MARKER_AT);
            for (int i = 0; i < MIB / marker.length; i++) {
                f.write(marker);
            }
        }
        AtomicReference<Process> qemu = new AtomicReference<>();
        try (SocketDir sockets = SocketDir.create("vb-")) {
            Path qmpSocket = sockets.resolve("qmp.sock");
            ExportSpec spec = new ExportSpec(image, HOTPLUG.diskSize(), 1, false, sockets.resolve("blk.sock"),
                    runDir.resolve("backend.log"));
            try (StorageBackend server = VhostBlkServer.start(spec)) {
                GuestRun run = QemuGuest.run(HARNESS.config(HOTPLUG, spec.socket(), runDir, QemuGuest.Ring.SPLIT),
                        check -> switch (check) {
                            case "hotplug" -> plugDimm(qmpSocket);
                            case "read-into-new-memory" -> findInDimm(qemu.get(), marker);
                            default -> "no host step named " + check;
                        }, "", command -> withHotplugMemory(command, qmpSocket), qemu::set);
                Problems problems = new Problems();
                problems.guest("guest: ", run, HOTPLUG);
                problems.hostVerdicts("host: ", run);
                problems.addIfAny("image file after the guest powered off: ",
                        DiskImage.compareRange(image, new GuestPlan.Region("write-after-hotplug", 0, MIB, 0)));
                if (!server.logTail(400).contains("memory region added")) {
                    problems.add("the server log shows no VHOST_USER_ADD_MEM_REG (\"memory region added\")");
                }
                problems.stop(server);
                problems.failIfAny("memhotplug", () -> Problems.tails(run, 40, server));
            }
        }
    }

    /** {@code ctl resize} over the control socket; null when the server resized and the guest was told. */
    static String resize(Path control, String device, long bytes) {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(control));
            Channels.newOutputStream(ch).write(("resize " + device + " " + bytes + "\n").getBytes(StandardCharsets.US_ASCII));
            String reply = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8))
                    .readLine();
            if (reply == null || !reply.contains("\"ok\":true") || !reply.contains("\"guest\":\"guest notified\"")) {
                return "resize over the control socket: " + reply;
            }
            return null;
        } catch (IOException e) {
            return "control socket: " + e;
        }
    }

    /** QEMU with room for DIMMs and a QMP monitor. */
    private static List<String> withHotplugMemory(List<String> command, Path qmpSocket) {
        int m = command.indexOf("-m");
        command.set(m + 1, command.get(m + 1) + ",slots=4,maxmem=2G");
        command.addAll(List.of("-qmp", "unix:" + qmpSocket + ",server=on,wait=off"));
        return command;
    }

    /** object-add a shared memfd backend and device_add a pc-dimm on it; null when QEMU accepted both. */
    private static String plugDimm(Path qmpSocket) {
        try (Qmp qmp = Qmp.connect(qmpSocket)) {
            String backend = qmp.execute("{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-backend-memfd\","
                    + "\"id\":\"m1\",\"size\":" + DIMM_SIZE + ",\"share\":true}}");
            if (backend != null) {
                return backend;
            }
            return qmp.execute("{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"pc-dimm\",\"id\":\"d1\","
                    + "\"memdev\":\"m1\"}}");
        } catch (IOException e) {
            return "QMP: " + e;
        }
    }

    /**
     * Looks for the marker in the DIMM's memory, through QEMU's descriptor of its memfd (the only
     * one of the DIMM's size): the guest read it with O_DIRECT, so only the back-end can have put it
     * there. Null when found.
     */
    private static String findInDimm(Process qemu, byte[] marker) {
        if (qemu == null) {
            return "QEMU's process is not known";
        }
        long head = MemorySegment.ofArray(marker).get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        long second = MemorySegment.ofArray(marker).get(ValueLayout.JAVA_LONG_UNALIGNED, 8);
        List<Path> dimms = new ArrayList<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(qemu.pid()), "fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    if (Files.readSymbolicLink(fd).toString().startsWith("/memfd:") && Files.size(fd) == DIMM_SIZE) {
                        dimms.add(fd);
                    }
                } catch (IOException gone) {
                    // A descriptor closed while listing: not the DIMM, which lives as long as QEMU.
                }
            }
        } catch (IOException e) {
            return "cannot list QEMU's descriptors: " + e;
        }
        if (dimms.isEmpty()) {
            return "no memfd of " + DIMM_SIZE + " bytes among QEMU's descriptors";
        }
        for (Path fd : dimms) {
            try (FileChannel ch = FileChannel.open(fd, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
                MemorySegment mem = ch.map(FileChannel.MapMode.READ_ONLY, 0, DIMM_SIZE, arena);
                // The guest's buffer is at least 16-byte aligned and the marker repeats every 512 bytes.
                for (long off = 0; off + marker.length <= DIMM_SIZE; off += 16) {
                    if (mem.get(ValueLayout.JAVA_LONG_UNALIGNED, off) == head
                            && mem.get(ValueLayout.JAVA_LONG_UNALIGNED, off + 8) == second
                            && MemorySegment.mismatch(mem, off, off + marker.length,
                            MemorySegment.ofArray(marker), 0, marker.length) < 0) {
                        return null;
                    }
                }
            } catch (IOException e) {
                return "cannot read " + fd + ": " + e;
            }
        }
        return "the data the guest read is nowhere in the hotplugged DIMM's memory";
    }
}
