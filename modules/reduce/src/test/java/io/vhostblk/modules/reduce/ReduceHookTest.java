package io.vhostblk.modules.reduce;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.BlockResult;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;
import io.vhostblk.testsupport.RecordingHookContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The dedup/compress hook driven as the compat-lib drives it ({@link RecordingHookContext}), over a formatted image
 * served by a synchronous file layer beneath: guest requests are taken over, the volume's backing I/O goes below
 * as the hook's own requests, and data reads back exact.
 */
class ReduceHookTest {

    private static final int BS = 4096;
    private static final long LOGICAL = 16L << 20;

    @TempDir
    Path dir;
    private Path image;
    private FileChannel file;
    private DeviceInfo device;
    private final Arena arena = Arena.ofShared();
    private final List<ModuleInstance> attached = new ArrayList<>();
    private final List<BlockOp> opsBelow = new ArrayList<>();
    private int slot;
    /** What the layer beneath XORs every byte with, as a stand-in for crypt: the image holds no plain byte. */
    private byte xor;

    @BeforeEach
    void format() throws Exception {
        image = dir.resolve("disk.img");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(LOGICAL * 2);
        }
        try (FileBackingStore s = FileBackingStore.open(image, false)) {
            ReduceVolume.format(s, new ReduceVolume.FormatOptions(LOGICAL, BS, Codec.LZ4, 0));
        }
        file = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE);
        device = new DeviceInfo("disk0", "vm0", "file", file.size(), false, image.toString());
    }

    @AfterEach
    void close() throws IOException {
        for (ModuleInstance m : attached) {
            m.close();
        }
        file.close();
        arena.close();
    }

    private ModuleInstance attach(String name) throws ModuleException {
        return attach(name, java.util.Map.of());
    }

    /** The layer beneath: a synchronous file driver, XOR-ing every byte with {@link #xor} on its way (0: plain). */
    private long below(BlockRequest r) {
        opsBelow.add(r.op());
        try {
            switch (r.op()) {
                case READ, WRITE -> {
                    byte[] bytes = new byte[(int) r.length()];
                    ByteBuffer b = ByteBuffer.wrap(bytes);
                    if (r.op() == BlockOp.WRITE) {
                        r.data().copyTo(0, MemorySegment.ofArray(bytes), 0, r.length());
                        xor(bytes);
                    }
                    while (b.hasRemaining()) {
                        int k = r.op() == BlockOp.READ ? file.read(b, r.offset() + b.position()) : file.write(b, r.offset() + b.position());
                        if (k < 0) {
                            return BlockResult.EIO;
                        }
                    }
                    if (r.op() == BlockOp.READ) {
                        xor(bytes);
                        r.data().copyFrom(MemorySegment.ofArray(bytes), 0, 0, r.length());
                    }
                    return r.length();
                }
                case FLUSH -> {
                    file.force(true);
                    return 0;
                }
                default -> {
                    return 0;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void xor(byte[] bytes) {
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] ^= xor;
        }
    }

    /** XORs the whole image file in place: what a transforming layer beneath stores for the same plain bytes. */
    private void xorImage(byte with) throws IOException {
        byte[] all = java.nio.file.Files.readAllBytes(image);
        for (int i = 0; i < all.length; i++) {
            all[i] ^= with;
        }
        java.nio.file.Files.write(image, all);
    }

    private ModuleInstance attach(String name, java.util.Map<String, String> given) throws ModuleException {
        return create(name, device, given);
    }

    /**
     * The module with {@code given} settings. The recording context is single-threaded, like the loop it stands in
     * for, so hashing stays on it ({@code worker = off}) unless a test asks otherwise; the worker thread is tested in
     * {@link WorkerOffloadTest} and by the guest tests.
     */
    private ModuleInstance create(String name, DeviceInfo on, java.util.Map<String, String> given) throws ModuleException {
        java.util.Map<String, String> settings = new java.util.HashMap<>(given);
        settings.putIfAbsent("worker", "off");
        java.util.Map<String, String> origins = new java.util.HashMap<>();
        settings.keySet().forEach(k -> origins.put(k, "policy.conf:3"));
        ModuleSettings s = new ModuleSettings(name, settings, origins);
        ModuleInstance m = name.equals("dedup") ? new DedupModule().create(on, s) : new CompressModule().create(on, s);
        attached.add(m);
        return m;
    }

    private BlockRequest request(BlockOp op, long offset, long length, MemorySegment data) {
        IoVector v = data == null ? IoVector.NONE : IoVector.over(data, op == BlockOp.READ);
        return new BlockRequest(slot++, "disk0", 0).set(op, offset, length, v, false);
    }

    private long run(BlockHook hook, RecordingHookContext ctx, BlockRequest r) {
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(r));
        ctx.settle(this::below);
        return ctx.resultOf(r);
    }

    private MemorySegment random(long bytes, long seed) {
        byte[] b = new byte[(int) bytes];
        new Random(seed).nextBytes(b);
        return arena.allocate(bytes).copyFrom(MemorySegment.ofArray(b));
    }

    private MemorySegment read(BlockHook hook, RecordingHookContext ctx, long offset, long length) {
        MemorySegment into = arena.allocate(length);
        into.fill((byte) 0x77);
        assertEquals(length, run(hook, ctx, request(BlockOp.READ, offset, length, into)));
        return into;
    }

    private static byte[] bytes(MemorySegment s) {
        return s.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    @Test
    void writesRewritesDiscardsAndReadsBackThroughBothNames() throws Exception {
        ModuleInstance dedup = attach("dedup");
        ModuleInstance compress = attach("compress");
        assertEquals(LOGICAL, dedup.capacity(file.size()), "the guest sees the logical size");
        assertEquals(file.size(), compress.capacity(file.size()), "the joined name keeps nothing for itself");
        assertTrue(dedup.failClosed());
        assertTrue(compress.failClosed());
        assertEquals(BS, dedup.logicalBlockSize());
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(ctx);
        assertEquals(HookAction.PASS, compress.openQueue(ctx).beforeDriver(request(BlockOp.FLUSH, 0, 0, null)));

        // Larger than a job's buffer: served in pieces.
        long big = ReduceDevice.CHUNK * 2L + 3 * BS;
        MemorySegment data = random(big, 1);
        byte[] before = bytes(data);
        assertEquals(big, run(hook, ctx, request(BlockOp.WRITE, 8 * BS, big, data)));
        assertArrayEquals(before, bytes(data), "the guest's write buffer is untouched");
        assertTrue(opsBelow.contains(BlockOp.WRITE), "the data went below as the hook's own requests");
        assertArrayEquals(before, bytes(read(hook, ctx, 8 * BS, big)));

        MemorySegment again = random(2 * BS, 2);
        assertEquals(2 * BS, run(hook, ctx, request(BlockOp.WRITE, 9 * BS, 2 * BS, again)));
        MemorySegment.copy(again, 0, data, BS, 2 * BS);
        assertArrayEquals(bytes(data), bytes(read(hook, ctx, 8 * BS, big)), "rewritten blocks read new, others old");

        assertEquals(0, run(hook, ctx, request(BlockOp.DISCARD, 8 * BS, 4 * BS, null)));
        MemorySegment back = read(hook, ctx, 8 * BS, 5 * BS);
        assertArrayEquals(new byte[4 * BS], bytes(back.asSlice(0, 4 * BS)), "discarded blocks read zeros");
        assertArrayEquals(bytes(data.asSlice(4 * BS, BS)), bytes(back.asSlice(4 * BS, BS)));

        int flushesBefore = count(BlockOp.FLUSH);
        assertEquals(0, run(hook, ctx, request(BlockOp.FLUSH, 0, 0, null)));
        assertTrue(count(BlockOp.FLUSH) > flushesBefore, "a guest FLUSH commits the volume with flushes below");

        assertEquals(true, dedup.report().get("dedup"));
        assertEquals(true, dedup.report().get("compress"));
        dedup.close();
        compress.close();
        attached.clear();
        try (FileBackingStore s = FileBackingStore.open(image, true)) {
            ReduceCheck.Report report = ReduceCheck.run(s, image.toString());
            assertTrue(report.clean(), report.problems().toString());
            assertEquals((big - 4 * BS) / BS, report.usage().mappedBlocks());
        }
    }

    /** Attaches on another thread, as the server does (control thread), while the queue runs on this one. */
    private ModuleInstance attachElsewhere(String name) throws Exception {
        java.util.concurrent.CompletableFuture<ModuleInstance> m = new java.util.concurrent.CompletableFuture<>();
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                m.complete(attach(name));
            } catch (Throwable e) {
                m.completeExceptionally(e);
            }
        });
        t.join();
        return m.get();
    }

    @Test
    void duplicateBlocksAreStoredOnceAndSurviveReopen() throws Exception {
        ModuleInstance dedup = attachElsewhere("dedup");
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(ctx);
        MemorySegment block = random(BS, 3);
        for (int i = 0; i < 32; i++) {
            assertEquals(BS, run(hook, ctx, request(BlockOp.WRITE, (long) i * 7 * BS, BS, block)));
        }
        assertEquals(0, run(hook, ctx, request(BlockOp.FLUSH, 0, 0, null)));
        assertEquals(31L, dedup.report().get("dedup_hits"));
        assertEquals((long) BS, dedup.report().get("physical_bytes_used"));
        dedup.close();
        attached.clear();

        ModuleInstance reopened = attachElsewhere("dedup");
        RecordingHookContext ctx2 = new RecordingHookContext(device);
        BlockHook hook2 = reopened.openQueue(ctx2);
        for (int i = 0; i < 32; i++) {
            assertArrayEquals(bytes(block), bytes(read(hook2, ctx2, (long) i * 7 * BS, BS)));
        }
    }

    @Test
    void anotherQueueHandsItsRequestsToTheOwnersLoop() throws Exception {
        ModuleInstance compress = attach("compress");
        RecordingHookContext owner = new RecordingHookContext(device);
        BlockHook first = compress.openQueue(owner);
        RecordingHookContext other = new RecordingHookContext(device);
        BlockHook second = compress.openQueue(other);
        MemorySegment data = random(3 * BS, 4);
        BlockRequest w = request(BlockOp.WRITE, 0, 3 * BS, data);
        assertEquals(HookAction.TAKE_OVER, second.beforeDriver(w));
        assertEquals(0, other.below.size(), "nothing goes below from the other queue");
        owner.settle(this::below);
        assertTrue(other.completed.isEmpty(), "the result comes back through the other queue's loop");
        other.runTasks();
        assertEquals(3 * BS, other.resultOf(w));
        assertTrue(owner.completed.isEmpty());
        assertEquals(1L, compress.report().get("requests_handed_over"));
        assertArrayEquals(bytes(data), bytes(read(first, owner, 0, 3 * BS)));
    }

    @Test
    void badDataAndAnErrorBelowAreTypedResults() throws Exception {
        ModuleInstance dedup = attach("dedup");
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(ctx);
        // Data shorter than the request.
        BlockRequest shortData = new BlockRequest(slot++, "disk0", 0)
                .set(BlockOp.WRITE, 0, 2 * BS, IoVector.over(random(BS, 5), false), false);
        assertEquals(BlockResult.EINVAL, run(hook, ctx, shortData));
        // The layer beneath fails a write: the guest gets EIO, nothing else.
        BlockRequest w = request(BlockOp.WRITE, 0, BS, random(BS, 6));
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(w));
        ctx.settle(r -> r.op() == BlockOp.WRITE ? BlockResult.EIO : below(r));
        assertEquals(BlockResult.EIO, ctx.resultOf(w));
    }

    @Test
    void anUnformattedImageIsRefusedWithItsName() throws Exception {
        try (FileChannel c = FileChannel.open(image, StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.allocate(BS), 0);
        }
        ModuleException e = assertThrows(ModuleException.class, () -> attach("dedup"));
        assertTrue(e.getMessage().contains("vm0") && e.getMessage().contains("disk0") && e.getMessage().contains(image.toString())
                && e.getMessage().contains("not a reduce volume") && e.getMessage().contains("reduce format"), e.getMessage());
    }

    @Test
    void aSecondChainOnTheSameVolumeIsRefused() throws Exception {
        attach("dedup");
        ModuleException e = assertThrows(ModuleException.class, () -> attach("dedup"));
        assertTrue(e.getMessage().contains("already open"), e.getMessage());
    }

    @Test
    void aRamDeviceHasNoImageToOpen() {
        device = new DeviceInfo("disk0", "vm0", "ram", 1 << 20, false, "ram:1M");
        ModuleException e = assertThrows(ModuleException.class, () -> attach("compress"));
        assertTrue(e.getMessage().contains("driver ram"), e.getMessage());
        assertInstanceOf(ModuleException.class, e);
    }

    @Test
    void theImageSettingOpensTheVolumeUnderADriverThatWrapsTheFile() throws Exception {
        String image = device.target();
        device = new DeviceInfo("disk0", "vm0", "faulty", device.capacity(), false, "io_uring " + image);
        ModuleInstance m = create("compress", device, java.util.Map.of("image", image));
        assertEquals(LOGICAL, m.capacity(device.capacity()));
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = m.openQueue(ctx);
        MemorySegment data = random(BS, 7);
        assertEquals(BS, run(hook, ctx, request(BlockOp.WRITE, 5 * BS, BS, data)));
        assertArrayEquals(bytes(data), bytes(read(hook, ctx, 5 * BS, BS)));
    }

    private int count(BlockOp op) {
        return (int) opsBelow.stream().filter(o -> o == op).count();
    }

    @Test
    void opensAndServesThroughALayerBeneathThatTransformsEveryByte() throws Exception {
        xorImage((byte) 0x5a);
        xor = (byte) 0x5a;
        java.util.Map<String, String> size = java.util.Map.of("logical-size", Long.toString(LOGICAL));
        ModuleInstance dedup = attach("dedup", size);
        ModuleInstance compress = attach("compress", size);
        assertEquals(LOGICAL, dedup.capacity(file.size()), "the guest sees the logical size the setting gives");
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(ctx);
        compress.openQueue(ctx);

        MemorySegment data = random(6 * BS, 11);
        MemorySegment copy = random(6 * BS, 11);
        assertEquals(6 * BS, run(hook, ctx, request(BlockOp.WRITE, 0, 6 * BS, data)));
        assertEquals(6 * BS, run(hook, ctx, request(BlockOp.WRITE, 64 * BS, 6 * BS, copy)));
        MemorySegment again = random(BS, 12);
        assertEquals(BS, run(hook, ctx, request(BlockOp.WRITE, 2 * BS, BS, again)));
        assertEquals(0, run(hook, ctx, request(BlockOp.DISCARD, 4 * BS, BS, null)));
        assertEquals(0, run(hook, ctx, request(BlockOp.FLUSH, 0, 0, null)));
        byte[] expected = bytes(data);
        System.arraycopy(bytes(again), 0, expected, 2 * BS, BS);
        java.util.Arrays.fill(expected, 4 * BS, 5 * BS, (byte) 0);
        assertArrayEquals(expected, bytes(read(hook, ctx, 0, 6 * BS)));
        assertArrayEquals(bytes(copy), bytes(read(hook, ctx, 64 * BS, 6 * BS)));
        assertEquals(6L, dedup.report().get("dedup_hits"), "the copy was shared: dedup compared the plain bytes");
        dedup.close();
        compress.close();
        attached.clear();

        ByteBuffer head = ByteBuffer.allocate(8);
        file.read(head, 0);
        assertTrue(!java.util.Arrays.equals("VHBLKRED".getBytes(java.nio.charset.StandardCharsets.US_ASCII), head.array()),
                "the superblock went through the layer beneath, not straight to the file");
        xorImage((byte) 0x5a); // what the layer beneath shows: the plain volume
        try (FileBackingStore s = FileBackingStore.open(image, false)) {
            ReduceCheck.Report report = ReduceCheck.run(s, image.toString());
            assertTrue(report.clean(), report.problems().toString());
            try (ReduceVolume v = ReduceVolume.open(s, "host", ReduceVolume.Options.both())) {
                assertArrayEquals(expected, Sync.read(v, 0, 6 * BS), "the volume reads back on the host, decoded");
            }
        }
    }

    @Test
    void requestsThatArriveBeforeTheVolumeIsOpenWaitForIt() throws Exception {
        ModuleInstance compress = attach("compress");
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = compress.openQueue(ctx);
        assertEquals("opening", compress.report().get("state"));
        MemorySegment data = random(2 * BS, 13);
        BlockRequest w = request(BlockOp.WRITE, 3 * BS, 2 * BS, data);
        BlockRequest f = request(BlockOp.FLUSH, 0, 0, null);
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(w));
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(f));
        ctx.runTasks();
        assertEquals(1, ctx.below.size(), "the open starts with one read: the superblock");
        assertEquals(BlockOp.READ, ctx.below.getFirst().op());
        assertEquals(0, ctx.below.getFirst().offset());
        ctx.settle(this::below);
        assertEquals(2 * BS, ctx.resultOf(w));
        assertEquals(0, ctx.resultOf(f));
        assertEquals("serving", compress.report().get("state"));
        assertEquals(2L, compress.report().get("requests_waited_for_the_volume_to_open"));
        // The opening checkpoint was made durable before the guest's data went below.
        int firstFlush = opsBelow.indexOf(BlockOp.FLUSH);
        int firstWrite = opsBelow.indexOf(BlockOp.WRITE);
        int dataWrite = opsBelow.subList(firstFlush, opsBelow.size()).indexOf(BlockOp.WRITE);
        assertTrue(firstWrite >= 0 && firstWrite < firstFlush && dataWrite > 0, opsBelow.toString());
        assertArrayEquals(bytes(data), bytes(read(hook, ctx, 3 * BS, 2 * BS)));
    }

    @Test
    void aVolumeThatCannotBeOpenedBeneathFailsEveryRequest() throws Exception {
        xorImage((byte) 0x33); // the layer beneath would show it plain; without it, it is no volume
        ModuleInstance dedup = attach("dedup", java.util.Map.of("logical-size", Long.toString(LOGICAL)));
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(ctx);
        BlockRequest w = request(BlockOp.WRITE, 0, BS, random(BS, 14));
        assertEquals(BlockResult.EIO, run(hook, ctx, w));
        String state = (String) dedup.report().get("state");
        assertTrue(state.startsWith("failed to open") && state.contains("not a reduce volume"), state);
        int before = ctx.below.size();
        assertEquals(BlockResult.EIO, run(hook, ctx, request(BlockOp.READ, 0, BS, arena.allocate(BS))));
        assertEquals(before, ctx.below.size(), "nothing more goes below");
    }

    @Test
    void theVolumeMustHaveTheSizeTheGuestWasShown() throws Exception {
        ModuleInstance dedup = attach("dedup", java.util.Map.of("logical-size", Long.toString(2 * LOGICAL)));
        assertEquals(2 * LOGICAL, dedup.capacity(file.size()));
        RecordingHookContext ctx = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(ctx);
        assertEquals(BlockResult.EIO, run(hook, ctx, request(BlockOp.READ, 0, BS, arena.allocate(BS))));
        String state = (String) dedup.report().get("state");
        assertTrue(state.contains("guest was shown " + 2 * LOGICAL) && state.contains("setting logical-size"), state);
    }

    @Test
    void geometrySettingsAreCheckedAtAttach() {
        ModuleException blockAlone = assertThrows(ModuleException.class, () -> attach("dedup", java.util.Map.of("block-size", "8192")));
        assertTrue(blockAlone.getMessage().contains("policy.conf:3") && blockAlone.getMessage().contains("only with logical-size"),
                blockAlone.getMessage());
        ModuleException ragged = assertThrows(ModuleException.class,
                () -> attach("dedup", java.util.Map.of("logical-size", Long.toString(LOGICAL + 512))));
        assertTrue(ragged.getMessage().contains("not a multiple of the block size 4096"), ragged.getMessage());
        ModuleException odd = assertThrows(ModuleException.class,
                () -> attach("dedup", java.util.Map.of("logical-size", Long.toString(LOGICAL), "block-size", "12288")));
        assertTrue(odd.getMessage().contains("not a power of two"), odd.getMessage());
        ModuleException worker = assertThrows(ModuleException.class, () -> attach("dedup", java.util.Map.of("worker", "sometimes")));
        assertTrue(worker.getMessage().contains("policy.conf:3") && worker.getMessage().contains("'sometimes' is not one of auto, on, off"),
                worker.getMessage());
    }

    @Test
    void whenTheServingQueueStopsTheNextQueueToOpenServesTheVolume() throws Exception {
        ModuleInstance dedup = attach("dedup");
        RecordingHookContext first = new RecordingHookContext(device);
        BlockHook hook = dedup.openQueue(first);
        MemorySegment data = random(3 * BS, 21);
        assertEquals(3 * BS, run(hook, first, request(BlockOp.WRITE, 7 * BS, 3 * BS, data)));
        assertEquals(0, run(hook, first, request(BlockOp.FLUSH, 0, 0, null)));
        hook.queueStopped(); // the front-end disconnected; the queue's loop is gone

        RecordingHookContext second = new RecordingHookContext(device);
        BlockHook again = dedup.openQueue(second);
        assertArrayEquals(bytes(data), bytes(read(again, second, 7 * BS, 3 * BS)), "served by the new queue");
        assertEquals(0, first.waitingBelow(), "nothing went to the stopped queue");
        assertEquals(3L, dedup.report().get("requests"), "the stopped queue's requests are still counted");
    }

    @Test
    void whenTheQueueStopsWhileTheVolumeOpensTheNextQueueOpensItAgain() throws Exception {
        ModuleInstance compress = attach("compress");
        RecordingHookContext first = new RecordingHookContext(device);
        BlockHook hook = compress.openQueue(first);
        BlockRequest lost = request(BlockOp.WRITE, 0, BS, random(BS, 22));
        assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(lost));
        first.runTasks();
        assertEquals(1, first.waitingBelow(), "the open is under way: the superblock read");
        hook.queueStopped();

        RecordingHookContext second = new RecordingHookContext(device);
        BlockHook again = compress.openQueue(second);
        MemorySegment data = random(BS, 23);
        assertEquals(BS, run(again, second, request(BlockOp.WRITE, 4 * BS, BS, data)));
        assertArrayEquals(bytes(data), bytes(read(again, second, 4 * BS, BS)));
        assertTrue(first.completed.isEmpty() && second.completed.stream().noneMatch(c -> c.request() == lost),
                "a request of the stopped queue is answered to no one");
        assertEquals("serving", compress.report().get("state"));
    }
}
