package io.vhostblk.virtio;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fuzzing with a fixed seed (every run checks the same inputs): any descriptor table a guest can
 * write, direct or indirect, either walks into segments that lie inside guest memory or is refused
 * with a {@link DescriptorException}; the virtio-blk decoder then answers every chain with a
 * status, and nothing else is ever thrown. {@code -Dvhostblk.fuzz.iterations=N} runs more,
 * {@code -Dvhostblk.fuzz.seed=S} other inputs.
 */
class HostileChainFuzzTest {
    private static final int SIZE = 16;
    private static final long MB = 1 << 20;
    /** A second region far away, so addresses between the regions are holes. */
    private static final long FAR = 1L << 32;
    private static final int ITERATIONS = Integer.getInteger("vhostblk.fuzz.iterations", 20_000);
    private static final long SEED = Long.getLong("vhostblk.fuzz.seed", 20261130);

    private static GuestRam ram;
    private static SplitRingDriver driver;
    private static SplittableRandom random;
    private static long indirectGpa;
    private static long dataGpa;

    @BeforeAll
    static void guest() throws VirtioException {
        ram = GuestRam.anonymous(new GuestRam.Region(0, MB), new GuestRam.Region(FAR, MB));
        driver = new SplitRingDriver(ram, SIZE);
        indirectGpa = ram.alloc(16L * SIZE, 16);
        dataGpa = ram.alloc(64 * 1024, 4096);
    }

    @AfterAll
    static void release() {
        ram.close();
    }

    private static long address() {
        return switch (random.nextInt(5)) {
            case 0, 1 -> dataGpa + random.nextLong(64 * 1024);
            case 2 -> new long[] {0, MB - 1, MB - 16, MB, FAR - 1, FAR, FAR + MB - 1, FAR + MB, -1, Long.MAX_VALUE}[random.nextInt(10)];
            case 3 -> indirectGpa;
            default -> random.nextLong();
        };
    }

    private static int length() {
        return switch (random.nextInt(3)) {
            case 0 -> new int[] {0, 1, 15, 16, 17, 512, 4096, 16 * SIZE, 16 * SIZE + 1, 1 << 30, -1, Integer.MIN_VALUE}[random.nextInt(12)];
            case 1 -> random.nextInt(70_000);
            default -> random.nextInt();
        };
    }

    /** NEXT=1, WRITE=2, INDIRECT=4 mostly, sometimes with bits a guest has no business setting. */
    private static int flags() {
        return random.nextInt(4) == 0 ? random.nextInt(0x10000) : random.nextInt(8);
    }

    private static int next() {
        return random.nextInt(8) == 0 ? random.nextInt(0x10000) : random.nextInt(SIZE);
    }

    /** A plausible request header where descriptors often point, so the decoder meets real types. */
    private static void header() {
        int[] types = {VirtioBlk.T_IN, VirtioBlk.T_OUT, VirtioBlk.T_FLUSH, VirtioBlk.T_GET_ID, 11, 13, 99, random.nextInt()};
        ByteBuffer b = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(types[random.nextInt(types.length)]).putInt(0).putLong(random.nextBoolean() ? random.nextLong(4096) : random.nextLong());
        byte[] tail = new byte[16];
        random.nextBytes(tail);
        b.put(tail);
        ram.at(dataGpa, 32).copyFrom(MemorySegment.ofArray(b.array()));
    }

    @Test
    void anyTableWalksInsideGuestMemoryOrIsRefused() throws Exception {
        random = new SplittableRandom(SEED);
        SplitVirtqueue queue = driver.deviceQueue(false, true);
        DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
        BlkRequest request = new BlkRequest(DescriptorChain.capacityFor(SIZE));
        int walked = 0;
        for (int n = 0; n < ITERATIONS; n++) {
            for (int i = 0; i < SIZE; i++) {
                driver.writeDescriptor(i, address(), length(), flags(), next());
                driver.writeTableDescriptor(indirectGpa, i, address(), length(), flags(), next());
            }
            header();
            driver.offer(random.nextInt(SIZE));
            driver.publish();
            int head = queue.popAvail();
            try {
                queue.walk(head, chain);
            } catch (DescriptorException refused) {
                continue;
            } catch (RuntimeException e) {
                fail("iteration " + n + " (seed " + SEED + "): the walk threw " + e, e);
            }
            walked++;
            checkWalked(n, chain, request);
        }
        // The generator must reach the code after the walk, or the fuzzing proves nothing.
        assertTrue(walked > ITERATIONS / 50, "only " + walked + " of " + ITERATIONS + " tables walked");
        System.out.println("[fuzz] descriptor tables: " + ITERATIONS + " iterations, " + walked + " walked and decoded (seed " + SEED + ")");
    }

    /**
     * The same for a packed ring: any ring contents and indirect table either walk inside guest
     * memory, or are refused per request ({@link DescriptorException}), or mark the ring corrupt
     * ({@link VirtioException}: a chain without end, an id out of range); nothing else is thrown.
     */
    @Test
    void anyPackedRingWalksInsideGuestMemoryOrIsRefused() throws Exception {
        random = new SplittableRandom(SEED + 1);
        PackedRingDriver packed = new PackedRingDriver(ram, SIZE);
        DescriptorChain chain = new DescriptorChain(DescriptorChain.capacityFor(SIZE));
        BlkRequest request = new BlkRequest(DescriptorChain.capacityFor(SIZE));
        int walked = 0;
        int corrupt = 0;
        for (int n = 0; n < ITERATIONS; n++) {
            int id = random.nextInt(8) == 0 ? random.nextInt(0x10000) : random.nextInt(SIZE);
            for (int i = SIZE - 1; i >= 0; i--) {
                // Mostly plausible lengths of NEXT runs; the head (position 0) is made available last.
                int f = flags() & ~(PackedVirtqueue.DESC_F_AVAIL | PackedVirtqueue.DESC_F_USED);
                if (i == 0) {
                    f |= PackedVirtqueue.DESC_F_AVAIL;
                }
                packed.writeDescriptor(i, address(), length(), random.nextInt(4) == 0 ? random.nextInt(0x10000) : id, f);
                packed.writeTableDescriptor(indirectGpa, i, address(), length(), flags());
            }
            header();
            PackedVirtqueue queue = packed.deviceQueue(random.nextBoolean(), true);
            int head;
            try {
                head = queue.popAvail();
            } catch (VirtioException ringCorrupt) {
                corrupt++;
                continue;
            } catch (RuntimeException e) {
                throw new AssertionError("iteration " + n + " (seed " + SEED + "): popAvail threw " + e, e);
            }
            assertTrue(head >= 0 && head < SIZE, "id " + head);
            try {
                queue.walk(head, chain);
            } catch (DescriptorException refused) {
                int written = queue.answerRejected(head, (byte) VirtioBlk.S_IOERR);
                queue.pushUsed(head, written);
                queue.publishUsed();
                continue;
            } catch (RuntimeException e) {
                fail("iteration " + n + " (seed " + SEED + "): the walk threw " + e, e);
            }
            walked++;
            checkWalked(n, chain, request);
            queue.pushUsed(head, 0);
            queue.publishUsed();
        }
        assertTrue(walked > ITERATIONS / 50, "only " + walked + " of " + ITERATIONS + " rings walked");
        assertTrue(corrupt > 0, "the generator never produced a corrupt ring");
        System.out.println("[fuzz] packed rings: " + ITERATIONS + " iterations, " + walked + " walked and decoded, "
                + corrupt + " corrupt rings refused (seed " + SEED + ")");
    }

    /** A walked chain lies inside guest memory, and the decoder answers it with a status without throwing. */
    private static void checkWalked(int n, DescriptorChain chain, BlkRequest request) {
        for (int i = 0; i < chain.segmentCount(); i++) {
            long end = chain.regionOffset(i) + chain.length(i);
            assertTrue(chain.regionOffset(i) >= 0 && end <= chain.regionSegment(i).byteSize(),
                    "iteration " + n + ": segment " + i + " of " + chain + " leaves its guest region");
        }
        int status;
        try {
            status = BlkRequestDecoder.decode(chain, request);
        } catch (RuntimeException e) {
            throw new AssertionError("iteration " + n + " (seed " + SEED + "): the decoder threw on " + chain, e);
        }
        assertTrue(status == VirtioBlk.S_OK || status == VirtioBlk.S_IOERR || status == VirtioBlk.S_UNSUPP
                || status == BlkRequestDecoder.NO_STATUS, "status " + status);
    }
}
