package io.vhostblk.modules.zerodetect;

import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.ModuleInstance;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/** zero-detect on one device: a hook per queue and their counters summed. */
final class ZeroDetectInstance implements ModuleInstance {
    private final boolean unmap;
    private final List<ZeroDetectHook> queues = new CopyOnWriteArrayList<>();

    ZeroDetectInstance(boolean unmap) {
        this.unmap = unmap;
    }

    @Override
    public BlockHook openQueue(HookContext context) {
        ZeroDetectHook hook = new ZeroDetectHook(context, unmap);
        queues.add(hook);
        return hook;
    }

    /** {@code writes-checked}, {@code zero-writes}, {@code bytes-saved} (data not transferred), {@code unmap}. */
    @Override
    public Map<String, Object> report() {
        long checked = 0;
        long zero = 0;
        long saved = 0;
        for (ZeroDetectHook q : queues) {
            checked += q.writesChecked;
            zero += q.zeroWrites;
            saved += q.bytesSaved;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("writes-checked", checked);
        m.put("zero-writes", zero);
        m.put("bytes-saved", saved);
        m.put("unmap", unmap);
        return m;
    }
}
