package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;
import io.vhostblk.testsupport.RecordingHookContext;
import io.vhostblk.drivers.BlockResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The crypt module driven directly, over a real LUKS image and a synchronous file "driver" beneath it. */
class CryptModuleTest {

    private static final String PASSPHRASE = "correct horse battery staple";
    private static final long PAYLOAD = 4L << 20;

    @TempDir
    Path dir;
    private Path image;
    private Path keyFile;
    private final Arena arena = Arena.ofShared();
    private RecordingHookContext ctx;

    @BeforeEach
    void format() throws Exception {
        image = dir.resolve("disk.luks");
        keyFile = LuksTestSupport.passFile(dir, "key", PASSPHRASE);
        try (Secret s = LuksTestSupport.secret(PASSPHRASE)) {
            LuksVolume.format(image, s, new FormatOptions(LuksVersion.LUKS1, 512, PAYLOAD, LuksTestSupport.FAST_PBKDF2));
        }
    }

    @AfterEach
    void free() {
        arena.close();
    }

    private ModuleSettings settings(String... kv) {
        Map<String, String> values = new HashMap<>();
        Map<String, String> origins = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            values.put(kv[i], kv[i + 1]);
            origins.put(kv[i], "policy.conf:" + (10 + i / 2));
        }
        return new ModuleSettings("crypt", values, origins);
    }

    /** Guest buffers of the given sizes holding {@code data}, and their iovec. */
    private record Guest(IoVector iov, MemorySegment[] buffers) {
        byte[] bytes() {
            int total = 0;
            for (MemorySegment b : buffers) {
                total += (int) b.byteSize();
            }
            byte[] out = new byte[total];
            int at = 0;
            for (MemorySegment b : buffers) {
                MemorySegment.copy(b, ValueLayout.JAVA_BYTE, 0, out, at, (int) b.byteSize());
                at += (int) b.byteSize();
            }
            return out;
        }
    }

    private Guest guest(byte[] data, int... sizes) {
        assertEquals(data.length, Arrays.stream(sizes).sum());
        // Device-writable: the same buffers serve as a read's destination; a write only reads them.
        IoVector iov = new IoVector(sizes.length, arena).clear(true);
        MemorySegment[] bufs = new MemorySegment[sizes.length];
        int at = 0;
        for (int i = 0; i < sizes.length; i++) {
            bufs[i] = arena.allocate(sizes[i], 1);
            MemorySegment.copy(data, at, bufs[i], ValueLayout.JAVA_BYTE, 0, sizes[i]);
            iov.add(bufs[i], 0, sizes[i]);
            at += sizes[i];
        }
        return new Guest(iov, bufs);
    }

    private byte[] imageBytes(long offset, int length) throws Exception {
        byte[] b = new byte[length];
        try (var ch = java.nio.channels.FileChannel.open(image)) {
            ch.read(ByteBuffer.wrap(b), offset);
        }
        return b;
    }

    private UnlockedVolume unlockForCheck() throws Exception {
        try (Secret s = LuksTestSupport.secret(PASSPHRASE)) {
            return LuksVolume.unlock(image, s);
        }
    }

    /** Runs one request through the hook and the file beneath it, as the compat-lib would; returns the guest's result. */
    private long roundTrip(BlockHook hook, FileBelow below, BlockRequest r) {
        HookAction a = hook.beforeDriver(r);
        if (a == HookAction.PASS) {
            return hook.afterDriver(r, below.serve(r));
        }
        assertEquals(HookAction.TAKE_OVER, a, "action for " + r);
        ctx.settle(below::serve);
        return ctx.resultOf(r);
    }

    /** The module's hook on a queue whose context answers from {@code below}. */
    private BlockHook open(ModuleInstance m, FileBelow below) {
        ctx = new RecordingHookContext(below.device());
        return m.openQueue(ctx);
    }

    @Test
    void writeStoresCiphertextAfterTheHeaderAndLeavesGuestBuffersAlone() throws Exception {
        ModuleInstance m = new CryptModule().create(new FileBelow(image).device(), settings("key-file", keyFile.toString()));
        try (FileBelow below = new FileBelow(image); UnlockedVolume check = unlockForCheck()) {
            BlockHook hook = open(m, below);
            byte[] plain = LuksTestSupport.randomPlaintext(8192, 1);
            // Odd buffer sizes: sectors straddle buffers.
            Guest g = guest(plain, 100, 700, 3300, 4092);
            long offset = 3 * 512;
            BlockRequest r = new BlockRequest(5, "disk0", 0).set(BlockOp.WRITE, offset, plain.length, g.iov(), false);
            assertEquals(plain.length, roundTrip(hook, below, r));

            assertArrayEquals(plain, g.bytes(), "the guest's write buffers were modified");
            assertEquals(offset, r.offset(), "the guest's request is never changed");
            assertEquals(g.iov(), r.data(), "the guest's request is never changed");
            assertEquals(4, r.data().segmentCount());

            byte[] expected = new byte[plain.length];
            check.cipher().encrypt(offset / 512, MemorySegment.ofArray(plain), MemorySegment.ofArray(expected), 512);
            assertArrayEquals(expected, imageBytes(check.payloadOffset() + offset, plain.length),
                    "image does not hold aes-xts-plain64 of the data at payloadOffset + offset");
            assertFalse(Arrays.equals(plain, imageBytes(check.payloadOffset() + offset, plain.length)));

            // Read back through different buffer boundaries.
            Guest rg = guest(new byte[plain.length], 512, 1, 4095, 3584);
            BlockRequest rr = new BlockRequest(6, "disk0", 0).set(BlockOp.READ, offset, plain.length, rg.iov(), false);
            assertEquals(plain.length, roundTrip(hook, below, rr));
            assertArrayEquals(plain, rg.bytes());
            assertEquals(offset, rr.offset());
        } finally {
            m.close();
        }
    }

    @Test
    void readsWhatAnotherLuksImplementationWrote() throws Exception {
        byte[] plain = LuksTestSupport.randomPlaintext(64 * 1024, 2);
        try (UnlockedVolume v = unlockForCheck()) {
            LuksTestSupport.writePayload(v, plain);
        }
        ModuleInstance m = new CryptModule().create(new FileBelow(image).device(), settings("passphrase-file", keyFile.toString()));
        try (FileBelow below = new FileBelow(image)) {
            BlockHook hook = open(m, below);
            Guest g = guest(new byte[16384], 16384);
            BlockRequest r = new BlockRequest(0, "disk0", 0).set(BlockOp.READ, 8192, 16384, g.iov(), false);
            assertEquals(16384, roundTrip(hook, below, r));
            assertArrayEquals(Arrays.copyOfRange(plain, 8192, 8192 + 16384), g.bytes());
        } finally {
            m.close();
        }
    }

    @Test
    void capacityIsThePayload() throws Exception {
        ModuleInstance m = new CryptModule().create(new FileBelow(image).device(), settings("key-file", keyFile.toString()));
        try (UnlockedVolume v = unlockForCheck()) {
            assertEquals(PAYLOAD, m.capacity(Files.size(image)));
            assertEquals(v.payloadSize(), m.capacity(Files.size(image)));
        } finally {
            m.close();
        }
    }

    @Test
    void largeWritesAndWriteZeroesGoThroughTheLaneEncrypted() throws Exception {
        ModuleInstance m = new CryptModule().create(new FileBelow(image).device(), settings("key-file", keyFile.toString()));
        try (FileBelow below = new FileBelow(image); UnlockedVolume check = unlockForCheck()) {
            BlockHook hook = open(m, below);
            int len = 3 * 1024 * 1024 + 512;
            byte[] plain = LuksTestSupport.randomPlaintext(len, 3);
            Guest g = guest(plain, 1000, len - 1000);
            BlockRequest w = new BlockRequest(1, "disk0", 0).set(BlockOp.WRITE, 512, len, g.iov(), false);
            assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(w));
            assertTrue(ctx.completed.isEmpty(), "completed before TAKE_OVER was returned");
            ctx.settle(below::serve);
            assertEquals(1, ctx.completed.size());
            assertEquals(w, ctx.completed.get(0).request());
            assertTrue(ctx.completed.get(0).result() >= 0);
            assertEquals(BlockOp.FLUSH, below.opsBelow.get(below.opsBelow.size() - 1), "large write not made durable");
            assertArrayEquals(plain, g.bytes());
            byte[] stored = imageBytes(check.payloadOffset() + 512, len);
            MemorySegment s = MemorySegment.ofArray(stored);
            check.cipher().decrypt(1, s, s, 512);
            assertArrayEquals(plain, stored);

            BlockRequest z = new BlockRequest(2, "disk0", 0).set(BlockOp.WRITE_ZEROES, 1024, 8192, IoVector.NONE, true);
            assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(z));
            ctx.settle(below::serve);
            assertEquals(2, ctx.completed.size());
            byte[] zs = imageBytes(check.payloadOffset() + 1024, 8192);
            assertFalse(Arrays.equals(new byte[8192], zs), "zeros on disk would decrypt to garbage");
            check.cipher().decrypt(2, MemorySegment.ofArray(zs), MemorySegment.ofArray(zs), 512);
            assertArrayEquals(new byte[8192], zs);
        } finally {
            m.close();
        }
    }

    @Test
    void exhaustedPoolQueuesWritesInTheLaneInsteadOfFailing() throws Exception {
        ModuleInstance m = new CryptModule().create(new FileBelow(image).device(),
                settings("key-file", keyFile.toString(), "bounce-pool-mib", "1"));
        try (FileBelow below = new FileBelow(image); UnlockedVolume check = unlockForCheck()) {
            BlockHook hook = open(m, below);
            int per = 256 * 1024;
            // Nothing is answered below until told: the four fast writes stay in flight, holding their chunks.
            BlockRequest[] rs = new BlockRequest[5];
            HookAction[] actions = new HookAction[5];
            byte[][] plains = new byte[5][];
            for (int i = 0; i < 5; i++) {
                plains[i] = LuksTestSupport.randomPlaintext(per, 10 + i);
                Guest g = guest(plains[i], per);
                rs[i] = new BlockRequest(i, "disk0", 0).set(BlockOp.WRITE, (long) i * per, per, g.iov(), false);
                actions[i] = hook.beforeDriver(rs[i]);
            }
            // 1 MiB of pool holds four 256 KiB writes in flight; the fifth waits in the lane.
            assertEquals(4, ctx.waitingBelow(), "four writes went below from the pool at once");
            assertEquals(0L, m.report().get("bounce-chunks-free"));
            assertEquals(HookAction.TAKE_OVER, actions[4]);
            ctx.answerAll(below::serve);
            assertEquals(4, ctx.completed.size());
            ctx.settle(below::serve);
            assertEquals(5, ctx.completed.size());
            assertEquals(32L, m.report().get("bounce-chunks"));
            assertEquals(32L, m.report().get("bounce-chunks-free"), "bounce chunks not all returned");
            for (int i = 0; i < 5; i++) {
                byte[] stored = imageBytes(check.payloadOffset() + (long) i * per, per);
                MemorySegment s = MemorySegment.ofArray(stored);
                check.cipher().decrypt((long) i * per / 512, s, s, 512);
                assertArrayEquals(plains[i], stored, "write " + i);
            }
        } finally {
            m.close();
        }
    }

    @Test
    void discardIsDroppedUnlessAllowed() throws Exception {
        ModuleInstance off = new CryptModule().create(new FileBelow(image).device(), settings("key-file", keyFile.toString()));
        ModuleInstance on = new CryptModule().create(new FileBelow(image).device(),
                settings("key-file", keyFile.toString(), "allow-discard", "true"));
        try (FileBelow below = new FileBelow(image)) {
            BlockRequest d = new BlockRequest(0, "disk0", 0).set(BlockOp.DISCARD, 4096, 8192, IoVector.NONE, false);
            assertEquals(HookAction.COMPLETE, open(off, below).beforeDriver(d));
            assertEquals(0, d.result());
            assertEquals(4096, d.offset());

            BlockHook hook = open(on, below);
            assertEquals(HookAction.TAKE_OVER, hook.beforeDriver(d));
            long payloadOffset = (long) on.report().get("payload-offset");
            BlockRequest sent = ctx.firstWaiting();
            assertEquals(BlockOp.DISCARD, sent.op());
            assertEquals(payloadOffset + 4096, sent.offset(), "discard must land after the header");
            assertEquals(8192, sent.length());
            ctx.answerAll(below::serve);
            assertEquals(0, ctx.resultOf(d));
            assertEquals(4096, d.offset(), "the guest's request is never changed");
        } finally {
            off.close();
            on.close();
        }
    }

    @Test
    void misalignedIoOnA4096SectorImageIsRefused() throws Exception {
        Path img4k = dir.resolve("disk4k.luks");
        try (Secret s = LuksTestSupport.secret(PASSPHRASE)) {
            LuksVolume.format(img4k, s, new FormatOptions(LuksVersion.LUKS2, 4096, PAYLOAD, LuksTestSupport.FAST_PBKDF2));
        }
        ModuleInstance m = new CryptModule().create(new FileBelow(img4k).device(), settings("key-file", keyFile.toString()));
        try (FileBelow below = new FileBelow(img4k)) {
            BlockHook hook = open(m, below);
            byte[] plain = LuksTestSupport.randomPlaintext(4096, 4);
            Guest g = guest(plain, 4096);
            BlockRequest bad = new BlockRequest(0, "disk0", 0).set(BlockOp.WRITE, 512, 4096, g.iov(), false);
            assertEquals(HookAction.COMPLETE, hook.beforeDriver(bad));
            assertEquals(BlockResult.EINVAL, bad.result());
            BlockRequest good = new BlockRequest(1, "disk0", 0).set(BlockOp.WRITE, 8192, 4096, g.iov(), false);
            assertEquals(4096, roundTrip(hook, below, good));
            Guest rg = guest(new byte[4096], 1000, 3096);
            BlockRequest rd = new BlockRequest(2, "disk0", 0).set(BlockOp.READ, 8192, 4096, rg.iov(), false);
            assertEquals(4096, roundTrip(hook, below, rd));
            assertArrayEquals(plain, rg.bytes());
        } finally {
            m.close();
        }
    }

    @Test
    void wrongPassphraseFailsAtCreateNamingTheKeyFileNotTheKey() throws Exception {
        String wrong = "not the passphrase at all";
        Path wrongFile = LuksTestSupport.passFile(dir, "wrong-key", wrong);
        byte[] before = LuksTestSupport.sha256(image);
        ModuleException e = assertThrows(ModuleException.class,
                () -> new CryptModule().create(new FileBelow(image).device(), settings("key-file", wrongFile.toString())));
        assertTrue(e.getMessage().contains(wrongFile.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("wrong passphrase"), e.getMessage());
        assertFalse(e.getMessage().contains(wrong), "the message shows the key");
        assertArrayEquals(before, LuksTestSupport.sha256(image), "the image was changed");
    }

    @Test
    void settingsErrorsNameTheOriginAndTheSetting() throws Exception {
        FileBelow b = new FileBelow(image);
        ModuleException missing = assertThrows(ModuleException.class, () -> new CryptModule().create(b.device(), settings()));
        assertTrue(missing.getMessage().contains("key-file"), missing.getMessage());
        ModuleException unknown = assertThrows(ModuleException.class,
                () -> new CryptModule().create(b.device(), settings("key-file", keyFile.toString(), "keyfile", "x")));
        assertTrue(unknown.getMessage().startsWith("policy.conf:11: module crypt: setting keyfile: unknown setting"), unknown.getMessage());
        ModuleException ram = assertThrows(ModuleException.class, () -> new CryptModule().create(
                new io.vhostblk.hooks.DeviceInfo("d", "vm", "ram", 1 << 30, false, "ram:1G"), settings("key-file", keyFile.toString())));
        assertTrue(ram.getMessage().contains("header-file"), ram.getMessage());
        b.close();
    }

    @Test
    void keyMaterialIsAbsentFromReportAndToString() throws Exception {
        ModuleInstance m = new CryptModule().create(new FileBelow(image).device(), settings("key-file", keyFile.toString()));
        try {
            String shown = m.report().toString() + " " + m;
            assertFalse(shown.contains(PASSPHRASE), shown);
            assertFalse(shown.contains(keyFile.toString()), "the report need not even name the key file: " + shown);
            assertTrue(shown.contains("aes-xts-plain64"), shown);
        } finally {
            m.close();
        }
    }

    @Test
    void registeredAsAServiceNamedCrypt() {
        assertTrue(ServiceLoader.load(io.vhostblk.hooks.HookModule.class).stream()
                .anyMatch(p -> p.get().name().equals("crypt")));
    }
}
