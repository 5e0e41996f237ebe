package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;

/**
 * The cache on one queue. The cache itself runs on the owner queue's loop (the first queue opened); other queues
 * hand their requests to it with {@link HookContext#execute} and get the results back the same way.
 */
final class CacheHook implements BlockHook, CacheEngine.Origin {

    final HookContext context;
    private final CacheDevice device;
    private final CacheEngine engine;
    private final boolean owner;
    /** Requests this queue handed to the owner queue (counter). */
    long handedOver;

    CacheHook(CacheDevice device, CacheEngine engine, HookContext context, boolean owner) {
        this.device = device;
        this.engine = engine;
        this.context = context;
        this.owner = owner;
    }

    @Override
    public HookAction beforeDriver(BlockRequest r) {
        switch (r.op()) {
            case READ, WRITE, DISCARD, WRITE_ZEROES -> {
            }
            case FLUSH -> {
                // Write-through and write-around caches keep nothing on the cache device that a FLUSH must make durable.
                if (!engine.writeBackCache) {
                    return HookAction.PASS;
                }
            }
            default -> {
                return HookAction.PASS;
            }
        }
        if (owner) {
            engine.serve(r, this);
        } else {
            handedOver++;
            device.owner().context.execute(() -> engine.serve(r, this));
        }
        return HookAction.TAKE_OVER;
    }

    /** Called on the owner's loop with a request's result. */
    @Override
    public void finish(BlockRequest r, long result) {
        if (owner) {
            context.complete(r, result);
        } else {
            context.execute(() -> context.complete(r, result));
        }
    }
}
