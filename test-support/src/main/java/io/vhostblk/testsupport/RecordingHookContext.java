package io.vhostblk.testsupport;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookContext;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToLongFunction;

/**
 * A {@link HookContext} for testing one hook without a compat-lib: what the hook sends below is
 * recorded and waits for {@link #answer}, what it completes is recorded, tasks wait for
 * {@link #runTasks()}. Single-threaded, like the event loop it stands in for.
 */
public final class RecordingHookContext implements HookContext {
    /** A request the hook finished ({@link #complete}) and its result. */
    public record Completion(BlockRequest request, long result) {
    }

    private final DeviceInfo device;
    private final Map<BlockRequest, BlockRequest> children = new IdentityHashMap<>();
    /** Sent below and not answered, in the order sent (BlockRequest has identity equality). */
    private final Map<BlockRequest, DriverCompletion> waiting = new LinkedHashMap<>();
    private final ArrayDeque<Runnable> tasks = new ArrayDeque<>();
    /** Everything the hook sent below, in order (answered or not). */
    public final List<BlockRequest> below = new ArrayList<>();
    /** Everything the hook completed, in order. */
    public final List<Completion> completed = new ArrayList<>();
    private int nextSlot = 100_000;

    public RecordingHookContext(DeviceInfo device) {
        this.device = device;
    }

    /** Answers a request the hook sent below, as the layers beneath would. */
    public void answer(BlockRequest sentBelow, long result) {
        DriverCompletion done = waiting.remove(sentBelow);
        if (done == null) {
            throw new IllegalStateException(sentBelow + " is not waiting below");
        }
        done.complete(sentBelow, result);
    }

    /** Requests sent below and not answered yet. */
    public int waitingBelow() {
        return waiting.size();
    }

    /** The oldest request waiting below, or null. */
    public BlockRequest firstWaiting() {
        return waiting.isEmpty() ? null : waiting.keySet().iterator().next();
    }

    /** Answers every request waiting below, in order, with {@code layer}'s result (a synchronous layer beneath). */
    public void answerAll(ToLongFunction<BlockRequest> layer) {
        BlockRequest r;
        while ((r = firstWaiting()) != null) {
            answer(r, layer.applyAsLong(r));
        }
    }

    /** Runs tasks and answers requests with {@code layer} until the hook has nothing left in progress. */
    public void settle(ToLongFunction<BlockRequest> layer) {
        while (!tasks.isEmpty() || !waiting.isEmpty()) {
            runTasks();
            answerAll(layer);
        }
    }

    /** The one result the hook completed {@code r} with. */
    public long resultOf(BlockRequest r) {
        List<Completion> hits = completed.stream().filter(c -> c.request() == r).toList();
        if (hits.size() != 1) {
            throw new IllegalStateException(r + " was completed " + hits.size() + " times");
        }
        return hits.getFirst().result();
    }

    /** Runs the tasks the hook posted, and those they post, until none is left. */
    public void runTasks() {
        Runnable t;
        while ((t = tasks.poll()) != null) {
            t.run();
        }
    }

    @Override
    public DeviceInfo device() {
        return device;
    }

    @Override
    public int queueIndex() {
        return 0;
    }

    @Override
    public void complete(BlockRequest request, long result) {
        completed.add(new Completion(request, result));
    }

    @Override
    public void execute(Runnable task) {
        tasks.add(task);
    }

    @Override
    public BlockRequest child(BlockRequest parent) {
        return children.computeIfAbsent(parent, p -> new BlockRequest(nextSlot++, p.deviceId(), p.queueIndex(), p));
    }

    @Override
    public BlockRequest newRequest() {
        return new BlockRequest(nextSlot++, device.deviceId(), 0);
    }

    @Override
    public void submitBelow(BlockRequest request, DriverCompletion done) {
        if (waiting.putIfAbsent(request, done) != null) {
            throw new IllegalStateException(request + " is already in flight below");
        }
        below.add(request);
    }
}
