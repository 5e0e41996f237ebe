package io.vhostblk.modules.reduce;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
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
        MemoryStore formatted = new MemoryStore(512L * BS);
        ReduceVolume.format(formatted, new ReduceVolume.FormatOptions(256L * BS, BS, Codec.LZ4, 8));
        ExecutorService loop = Executors.newSingleThreadExecutor(r -> new Thread(r, "reduce-test-loop"));
        ExecutorService workers = Executors.newFixedThreadPool(2, r -> new Thread(r, "reduce-test-worker"));
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
            // Bounded: a volume that never opens fails the test instead of hanging it.
            ReduceVolume v = CompletableFuture.supplyAsync(() -> {
                try {
                    return ReduceVolume.open(store, "w", ReduceVolume.Options.both(), workers, loop);
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
            workers.shutdownNow();
            assertTrue(loop.awaitTermination(10, TimeUnit.SECONDS) && workers.awaitTermination(10, TimeUnit.SECONDS));
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
