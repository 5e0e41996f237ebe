package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The volume as a module will run it: opened from a setup thread through {@link LoopBoundStore}, then served on
 * one loop thread while hashing and compression run on worker threads and come back to the loop.
 */
class WorkerOffloadTest {

    private static final int BS = 4096;

    @Test
    void heavyWorkOnWorkersEverythingElseOnTheLoop() throws Exception {
        ExecutorService workers = Executors.newFixedThreadPool(2, r -> new Thread(r, "reduce-test-worker"));
        try {
            serveOnALoop(null, loop -> workers, loop -> loop);
        } finally {
            workers.shutdownNow();
            assertTrue(workers.awaitTermination(10, TimeUnit.SECONDS));
        }
    }

    /**
     * The module's worker: one thread fingerprints (and compresses) every block, results come back to the loop in
     * batches through the loop's task queue; the store is only touched on the loop, and the data reads back.
     */
    @Test
    void theBlockWorkerFingerprintsOnItsThreadAndHandsResultsToTheLoop() throws Exception {
        Set<String> hashedOn = ConcurrentHashMap.newKeySet();
        ReduceVolume.Fingerprint recording = (block, out) -> {
            hashedOn.add(Thread.currentThread().getName());
            byte[] bytes = block.toArray(ValueLayout.JAVA_BYTE);
            out[0] = Arrays.hashCode(bytes);
            out[1] = Arrays.hashCode(Arrays.copyOf(bytes, bytes.length / 2));
        };
        BlockWorker[] worker = new BlockWorker[1];
        try {
            serveOnALoop(recording, loop -> worker[0] = new BlockWorker("reduce-test-block-worker", 64, loop),
                    loop -> worker[0].toLoop());
        } finally {
            worker[0].close();
        }
        assertEquals(Set.of("reduce-test-block-worker"), hashedOn, "every block fingerprinted on the worker");
    }

    /**
     * Opens a volume whose store may only be called on a loop thread, with the worker and the way back that the two
     * functions make from that loop; writes text and noise, flushes, reads back, checks the volume.
     */
    private static void serveOnALoop(ReduceVolume.Fingerprint fingerprint,
                                     java.util.function.Function<ExecutorService, Executor> workerFor,
                                     java.util.function.Function<ExecutorService, Executor> backTo) throws Exception {
        MemoryStore formatted = new MemoryStore(512L * BS);
        ReduceVolume.format(formatted, new ReduceVolume.FormatOptions(256L * BS, BS, Codec.LZ4, 8));
        ExecutorService loop = Executors.newSingleThreadExecutor(r -> new Thread(r, "reduce-test-loop"));
        AtomicReference<Thread> loopThread = new AtomicReference<>();
        loop.submit(() -> loopThread.set(Thread.currentThread())).get(10, TimeUnit.SECONDS);
        try {
            // The store checks that the volume only ever calls it on the loop.
            MemoryStore onLoopOnly = new MemoryStore(formatted.image) {
                @Override
                public void write(long offset, MemorySegment buffer, IoCompletion done) {
                    assertEquals(loopThread.get(), Thread.currentThread(), "store called off the loop");
                    super.write(offset, buffer, done);
                }
            };
            LoopBoundStore store = new LoopBoundStore(onLoopOnly, loop);
            Executor worker = workerFor.apply(loop);
            Executor back = backTo.apply(loop);
            // Bounded: a volume that never opens fails the test instead of hanging it.
            ReduceVolume v = CompletableFuture.supplyAsync(() -> {
                try {
                    return ReduceVolume.open(store, "w", ReduceVolume.Options.both(), fingerprint, worker, back, 0);
                } catch (ReduceException e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            }).get(30, TimeUnit.SECONDS);
            loop.submit(store::serveDirectly).get(10, TimeUnit.SECONDS);

            byte[] data = new byte[64 * BS];
            for (int i = 0; i < 64; i++) {
                byte[] block = i % 3 == 0 ? ReduceVolumeTest.random(i, BS) : ReduceVolumeTest.compressible(i % 5, BS);
                System.arraycopy(block, 0, data, i * BS, BS);
            }
            MemorySegment from = Arena.ofAuto().allocate(data.length, 4096);
            MemorySegment.copy(MemorySegment.ofArray(data), 0, from, 0, data.length);
            MemorySegment into = Arena.ofAuto().allocate(data.length, 4096);
            assertEquals(0, onLoop(loop, done -> v.write(0, from, done)));
            assertEquals(0, onLoop(loop, v::flush));
            assertEquals(0, onLoop(loop, done -> v.read(0, into, done)));
            assertArrayEquals(data, into.toArray(ValueLayout.JAVA_BYTE));
            assertTrue(v.counters().dedupHits() > 0, "identical text blocks shared");
            assertTrue(v.counters().compressedBlocks() > 0, "text compressed");
            loop.submit(v::close).get(10, TimeUnit.SECONDS);
        } finally {
            loop.shutdownNow();
            assertTrue(loop.awaitTermination(10, TimeUnit.SECONDS));
        }
        Sync.clean(ReduceCheck.run(new MemoryStore(formatted.image), "w"));
    }

    /** Issues a request on the loop thread and waits (bounded) for its completion. */
    private static int onLoop(ExecutorService loop, java.util.function.Consumer<IoCompletion> request) throws Exception {
        CompletableFuture<Integer> result = new CompletableFuture<>();
        loop.execute(() -> request.accept(result::complete));
        return result.get(30, TimeUnit.SECONDS);
    }
}
