package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.HookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Modules defined by the tests, offered the way the policy's catalog offers its modules: every
 * attach creates a new instance through {@link HookModule#create}.
 *
 * <ul>
 *   <li>{@code alpha}, {@code beta}, {@code gamma}: pass everything on, noting their name in
 *       {@link #calls} at the pre-call point (so the order the chain runs in can be checked);
 *   <li>{@code flush-eater}: answers FLUSH itself, passes the rest;
 *   <li>{@code bad-report}: its report throws;
 *   <li>{@code shrinker}: keeps the last 4 KiB of the device for itself (changes the capacity);
 *   <li>{@code refuses}: cannot be attached.
 * </ul>
 */
final class TestModules implements ModuleSource {
    /** Module names at the pre-call point, in call order, across instances. */
    final List<String> calls = new CopyOnWriteArrayList<>();
    /** Every instance created, in order. */
    final List<Instance> instances = new CopyOnWriteArrayList<>();
    private final Map<String, HookModule> modules = new LinkedHashMap<>();

    TestModules() {
        for (String n : List.of("alpha", "beta", "gamma", "flush-eater", "bad-report", "shrinker", "refuses")) {
            modules.put(n, new Module(n));
        }
    }

    @Override
    public List<String> available() {
        return List.copyOf(modules.keySet());
    }

    @Override
    public ChainEntry attach(String name, BlockDevice device) throws ModuleException {
        HookModule m = modules.get(name);
        if (m == null) {
            throw new ModuleException("module " + name + " is not in the test catalog");
        }
        return new ChainEntry(m.name(), m.version(), m.create(device.info(), ModuleSettings.empty(name)));
    }

    /** A test module: its behaviour depends on its name. */
    private final class Module implements HookModule {
        private final String name;

        Module(String name) {
            this.name = name;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public String version() {
            return "1.0-test";
        }

        @Override
        public ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
            if (name.equals("refuses")) {
                throw new ModuleException("module refuses: device " + device.deviceId() + " is not for me");
            }
            Instance i = new Instance(name);
            instances.add(i);
            return i;
        }
    }

    /** One attached instance. */
    final class Instance implements ModuleInstance {
        final String name;
        volatile long requests;
        volatile boolean closed;
        /** What {@link #prepareDetach} does (null: the default, ready at once). */
        volatile java.util.function.Supplier<java.util.concurrent.CompletableFuture<Void>> onPrepareDetach;

        Instance(String name) {
            this.name = name;
        }

        @Override
        public BlockHook openQueue(HookContext context) {
            return request -> before(request);
        }

        private HookAction before(BlockRequest request) {
            requests++;
            calls.add(name);
            if (name.equals("flush-eater") && request.op() == BlockOp.FLUSH) {
                request.result(0);
                return HookAction.COMPLETE;
            }
            return HookAction.PASS;
        }

        @Override
        public java.util.concurrent.CompletableFuture<Void> prepareDetach() {
            var p = onPrepareDetach;
            return p == null ? ModuleInstance.super.prepareDetach() : p.get();
        }

        @Override
        public long capacity(long capacityBelow) {
            return name.equals("shrinker") ? capacityBelow - 4096 : capacityBelow;
        }

        @Override
        public Map<String, Object> report() {
            if (name.equals("bad-report")) {
                throw new IllegalStateException("statistics unavailable");
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("requests", requests);
            r.put("label", "say \"hi\"\\\n\ttab\u0001");
            r.put("nested", Map.of("ratio", 0.5));
            r.put("list", new ArrayList<>(List.of(1, 2)));
            return r;
        }

        @Override
        public void close() {
            closed = true;
        }
    }
}
