package io.vhostblk.modules.crypt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class XtsAes256Test {

    // IEEE 1619-2007 Annex B, vectors 10 and 14: Key1 || Key2, 512-byte data unit of 00..ff twice.
    private static final byte[] IEEE_KEY = Tools.HEX.parseHex(
            "2718281828459045235360287471352662497757247093699959574966967627"
            + "3141592653589793238462643383279502884197169399375105820974944592");
    private static final String VECTOR_10_CT =
            "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
            + "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
            + "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
            + "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
            + "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
            + "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
            + "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
            + "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
            + "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
            + "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
            + "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
            + "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
            + "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
            + "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
            + "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
            + "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";
    private static final String VECTOR_14_CT =
            "64497e5a831e4a932c09be3e5393376daa599548b816031d224bbf50a818ed23"
            + "50eae7e96087c8a0db51ad290bd00c1ac1620857635bf246c176ab463be30b80"
            + "8da548081ac847b158e1264be25bb0910bbc92647108089415d45fab1b3d2604"
            + "e8a8eff1ae4020cfa39936b66827b23f371b92200be90251e6d73c5f86de5fd4"
            + "a950781933d79a28272b782a2ec313efdfcc0628f43d744c2dc2ff3dcb66999b"
            + "50c7ca895b0c64791eeaa5f29499fb1c026f84ce5b5c72ba1083cddb5ce45434"
            + "631665c333b60b11593fb253c5179a2c8db813782a004856a1653011e93fb6d8"
            + "76c18366dd8683f53412c0c180f9c848592d593f8609ca736317d356e13e2bff"
            + "3a9f59cd9aeb19cd482593d8c46128bb32423b37a9adfb482b99453fbe25a41b"
            + "f6feb4aa0bef5ed24bf73c762978025482c13115e4015aac992e5613a3b5c2f6"
            + "85b84795cb6e9b2656d8c88157e52c42f978d8634c43d06fea928f2822e465aa"
            + "6576e9bf419384506cc3ce3c54ac1a6f67dc66f3b30191e698380bc999b05abc"
            + "e19dc0c6dcc2dd001ec535ba18deb2df1a101023108318c75dc98611a09dc48a"
            + "0acdec676fabdf222f07e026f059b672b56e5cbc8e1d21bbd867dd9272120546"
            + "81d70ea737134cdfce93b6f82ae22423274e58a0821cc5502e2d0ab4585e94de"
            + "6975be5e0b4efce51cd3e70c25a1fbbbd609d273ad5b0d59631c531f6a0a57b9";

    private static byte[] counterPlaintext() {
        byte[] p = new byte[512];
        for (int i = 0; i < p.length; i++) {
            p[i] = (byte) i;
        }
        return p;
    }

    private static void ieeeVector(long dataUnit, String ciphertextHex) {
        byte[] plain = counterPlaintext();
        byte[] expected = Tools.HEX.parseHex(ciphertextHex);
        try (Arena arena = Arena.ofConfined(); XtsAes256 xts = new XtsAes256(IEEE_KEY)) {
            MemorySegment src = arena.allocate(512).copyFrom(MemorySegment.ofArray(plain));
            MemorySegment dst = arena.allocate(512);
            xts.encrypt(dataUnit, src, dst, 512);
            assertArrayEquals(expected, dst.toArray(ValueLayout.JAVA_BYTE));
            assertArrayEquals(plain, src.toArray(ValueLayout.JAVA_BYTE), "encrypt must not touch its source");
            xts.decrypt(dataUnit, dst, dst, 512);
            assertArrayEquals(plain, dst.toArray(ValueLayout.JAVA_BYTE), "in-place decrypt");
        }
    }

    @Test
    void ieee1619Vector10() {
        ieeeVector(0xffL, VECTOR_10_CT);
    }

    @Test
    void ieee1619Vector14() {
        ieeeVector(0xffffffffffL, VECTOR_14_CT);
    }

    /** A run of sectors in one call equals OpenSSL's AES-256-XTS of each sector with its plain64 IV. */
    @Test
    void multiSectorRunMatchesOpenssl512() throws Exception {
        checkAgainstOpenssl(512, 1_000_000L, 8);
    }

    /** 4096-byte sectors: one data unit per 4 KiB, IV still counted in 512-byte sectors (steps of 8). */
    @Test
    void multiSectorRunMatchesOpenssl4096() throws Exception {
        checkAgainstOpenssl(4096, 8L * 12345, 3);
    }

    private static void checkAgainstOpenssl(int sectorSize, long firstSector, int sectors) throws Exception {
        Random rnd = new Random(sectorSize + firstSector);
        byte[] key = new byte[64];
        rnd.nextBytes(key);
        byte[] plain = new byte[sectorSize * sectors];
        rnd.nextBytes(plain);
        byte[] ours;
        try (XtsAes256 xts = new XtsAes256(key)) {
            MemorySegment dst = MemorySegment.ofArray(new byte[plain.length]);
            xts.encrypt(firstSector, MemorySegment.ofArray(plain), dst, sectorSize);
            ours = dst.toArray(ValueLayout.JAVA_BYTE);
        }
        java.util.List<String> tweaks = new java.util.ArrayList<>();
        for (int i = 0; i < sectors; i++) {
            tweaks.add(Tools.plain64(firstSector + (long) i * (sectorSize / 512)));
        }
        assertArrayEquals(Tools.opensslXts(key, sectorSize, tweaks, plain), ours, sectorSize + "-byte sectors from " + firstSector);
    }

    /** Runs longer than the 64 KiB internal chunk agree with sector-at-a-time encryption. */
    @Test
    void longRunsCrossChunkBoundaries() {
        Random rnd = new Random(7);
        byte[] key = new byte[64];
        rnd.nextBytes(key);
        for (int sectorSize : new int[] {512, 4096}) {
            byte[] plain = new byte[200 * 1024 + 3 * sectorSize];
            plain = Arrays.copyOf(plain, plain.length / sectorSize * sectorSize);
            rnd.nextBytes(plain);
            long first = 64L * 1024;
            try (XtsAes256 xts = new XtsAes256(key)) {
                byte[] bulk = new byte[plain.length];
                xts.encrypt(first, MemorySegment.ofArray(plain), MemorySegment.ofArray(bulk), sectorSize);
                for (int off = 0; off < plain.length; off += sectorSize) {
                    byte[] one = new byte[sectorSize];
                    xts.encrypt(first + off / 512, MemorySegment.ofArray(plain).asSlice(off, sectorSize), MemorySegment.ofArray(one), sectorSize);
                    assertArrayEquals(one, Arrays.copyOfRange(bulk, off, off + sectorSize), "offset " + off);
                }
                xts.decrypt(first, MemorySegment.ofArray(bulk), MemorySegment.ofArray(bulk), sectorSize);
                assertArrayEquals(plain, bulk);
            }
        }
    }

    @Test
    void rejectsMisalignedInput() {
        try (XtsAes256 xts = new XtsAes256(new byte[64])) {
            MemorySegment seg = MemorySegment.ofArray(new byte[8192]);
            assertThrows(IllegalArgumentException.class, () -> xts.encrypt(0, seg.asSlice(0, 1000), seg, 512));
            assertThrows(IllegalArgumentException.class, () -> xts.encrypt(3, seg, seg, 4096));
            assertThrows(IllegalArgumentException.class, () -> xts.encrypt(0, seg, seg.asSlice(0, 4096), 512));
            assertThrows(IllegalArgumentException.class, () -> xts.encrypt(0, seg, seg, 8192));
        }
        assertThrows(IllegalArgumentException.class, () -> new XtsAes256(new byte[32]));
    }

    @Test
    void closeWipesAndDisables() {
        XtsAes256 xts = new XtsAes256(new byte[64]);
        xts.close();
        assertThrows(IllegalStateException.class, () -> xts.encrypt(0, MemorySegment.ofArray(new byte[512]), MemorySegment.ofArray(new byte[512]), 512));
        assertFalse(xts.toString().matches(".*[0-9a-f]{32}.*"));
    }

    /**
     * The bulk path allocates nothing: after warm-up (so the JIT has compiled it), encrypting and decrypting
     * 1 MiB runs of native memory 50 times each allocates (almost) no bytes on this thread, measured with
     * com.sun.management.ThreadMXBean#getThreadAllocatedBytes.
     */
    @Test
    void bulkPathIsAllocationFree() {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assertTrue(mx.isThreadAllocatedMemorySupported());
        try (Arena arena = Arena.ofConfined(); XtsAes256 xts = new XtsAes256(new byte[64])) {
            MemorySegment src = arena.allocate(1 << 20, 4096);
            MemorySegment dst = arena.allocate(1 << 20, 4096);
            MemorySegment small = src.asSlice(0, 128 * 1024);
            MemorySegment smallDst = dst.asSlice(0, 128 * 1024);
            for (int i = 0; i < 3000; i++) {
                xts.encrypt(i * 8L, small, smallDst, i % 2 == 0 ? 512 : 4096);
                xts.decrypt(i * 8L, smallDst, smallDst, i % 2 == 0 ? 512 : 4096);
            }
            long tid = Thread.currentThread().threadId();
            long before = mx.getThreadAllocatedBytes(tid);
            for (int i = 0; i < 50; i++) {
                xts.encrypt(i * 8L, src, dst, i % 2 == 0 ? 512 : 4096);
                xts.decrypt(i * 8L, dst, dst, i % 2 == 0 ? 512 : 4096);
            }
            long allocated = mx.getThreadAllocatedBytes(tid) - before;
            // 100 MiB went through; a per-sector allocation would show as megabytes, a per-call one as KiB.
            assertTrue(allocated < 1024, "bulk path allocated " + allocated + " bytes for 100 calls");
        }
    }

    @Test
    void sourceEqualsDestinationEncryptsInPlace() {
        byte[] key = new byte[64];
        Arrays.fill(key, (byte) 5);
        byte[] data = new byte[4096];
        new Random(1).nextBytes(data);
        byte[] copy = data.clone();
        try (XtsAes256 xts = new XtsAes256(key)) {
            byte[] separate = new byte[4096];
            xts.encrypt(16, MemorySegment.ofArray(data), MemorySegment.ofArray(separate), 512);
            xts.encrypt(16, MemorySegment.ofArray(data), MemorySegment.ofArray(data), 512);
            assertArrayEquals(separate, data);
            xts.decrypt(16, MemorySegment.ofArray(data), MemorySegment.ofArray(data), 512);
            assertArrayEquals(copy, data);
        }
        assertEquals(64, XtsAes256.KEY_BYTES);
    }
}
