package io.vhostblk.hooks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/** A module attached to a device: its name, version, instance, and its counters across queues. */
public final class ChainEntry {
    private final String name;
    private final String version;
    private final ModuleInstance instance;
    private final List<HookCounters> queues = new CopyOnWriteArrayList<>();

    public ChainEntry(String name, String version, ModuleInstance instance) {
        this.name = name;
        this.version = version;
        this.instance = instance;
    }

    public String name() {
        return name;
    }

    public String version() {
        return version;
    }

    public ModuleInstance instance() {
        return instance;
    }

    /** Counters for one more queue; called when a queue first runs this module. */
    public HookCounters newQueueCounters() {
        HookCounters c = new HookCounters();
        queues.add(c);
        return c;
    }

    /** Totals across queues: requests seen, completed by the module, passed on, errors, bytes. */
    public Map<String, Long> counters() {
        long[] sum = new long[5];
        for (HookCounters c : queues) {
            c.addTo(sum);
        }
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("seen", sum[0]);
        m.put("completed", sum[1]);
        m.put("passed", sum[2]);
        m.put("errors", sum[3]);
        m.put("bytes", sum[4]);
        return m;
    }
}
