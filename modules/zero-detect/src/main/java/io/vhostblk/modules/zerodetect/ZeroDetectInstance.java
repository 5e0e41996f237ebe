package io.vhostblk.modules.zerodetect;

import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.PerQueueInstance;

import java.util.LinkedHashMap;
import java.util.Map;

/** zero-detect on one device: a hook per queue and their counters summed. */
final class ZeroDetectInstance extends PerQueueInstance<ZeroDetectHook> {
    private final boolean unmap;

    ZeroDetectInstance(boolean unmap) {
        this.unmap = unmap;
    }

    @Override
    protected ZeroDetectHook newQueueHook(HookContext context) {
        return new ZeroDetectHook(context, unmap);
    }

    /** {@code writes-checked}, {@code zero-writes}, {@code bytes-saved} (data not transferred), {@code unmap}. */
    @Override
    public Map<String, Object> report() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("writes-checked", sum(h -> h.writesChecked));
        m.put("zero-writes", sum(h -> h.zeroWrites));
        m.put("bytes-saved", sum(h -> h.bytesSaved));
        m.put("unmap", unmap);
        return m;
    }
}
