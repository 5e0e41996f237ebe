package io.vhostblk.server;

import io.vhostblk.compat.BlockDevice;
import io.vhostblk.drivers.FaultCounters;
import io.vhostblk.drivers.FaultyDriver;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookChain;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The control socket's commands: one command a line (words separated by spaces), one line of
 * JSON back, {@code {"ok":true,...}} or {@code {"ok":false,"error":"..."}}. See {@link #COMMANDS}.
 */
public final class ControlProtocol {
    private static final System.Logger LOG = System.getLogger(ControlProtocol.class.getName());
    /** Echoed user input is cut to this many characters in error messages. */
    private static final int ECHO_MAX = 64;

    /** Every command with its arguments, as {@code help} lists them. */
    static final List<String> COMMANDS = List.of(
            "devices                              list devices: VM, driver, capacity, chain",
            "chain DEVICE                         the device's modules in order (0 = nearest the guest)",
            "modules [DEVICE]                     modules the (device's) policy makes available",
            "enable DEVICE MODULE [POSITION]      attach a new instance at POSITION (default: the policy's order)",
            "disable DEVICE MODULE                take the module out of the chain",
            "move DEVICE MODULE POSITION          reorder the chain",
            "counters DEVICE [MODULE]             requests seen, completed by the module, passed on, errors, bytes",
            "report DEVICE MODULE                 the module's own statistics",
            "device-add SERVE-OPTIONS             serve one more device (--id, --socket, --disk, ... as for serve)",
            "device-remove DEVICE                 drain and sync the device, then stop serving it",
            "help                                 this list");

    private final DeviceRegistry registry;
    private final ModuleSource modules;
    private final ChainEditor editor;
    private final DeviceAdmin admin;

    public ControlProtocol(DeviceRegistry registry, ModuleSource modules) {
        this(registry, modules, null);
    }

    /** With {@code admin}, devices can be added and removed ({@code device-add}, {@code device-remove}). */
    public ControlProtocol(DeviceRegistry registry, ModuleSource modules, DeviceAdmin admin) {
        this.registry = registry;
        this.modules = modules;
        this.editor = new ChainEditor(registry, modules);
        this.admin = admin;
    }

    /** Runs one command line; returns the reply (one line of JSON, without the newline). Never throws. */
    public String handle(String line) {
        try {
            Map<String, Object> reply = new LinkedHashMap<>();
            reply.put("ok", true);
            run(words(line), reply);
            return Json.write(reply);
        } catch (ControlException e) {
            return error(e.getMessage());
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "control command '" + shorten(line) + "' failed", e);
            return error("internal error: " + e);
        }
    }

    /** An error reply. */
    static String error(String message) {
        Map<String, Object> reply = new LinkedHashMap<>();
        reply.put("ok", false);
        reply.put("error", message);
        return Json.write(reply);
    }

    /** User input for an error message, cut short. */
    static String shorten(String s) {
        return s.length() <= ECHO_MAX ? s : s.substring(0, ECHO_MAX) + "...";
    }

    private static List<String> words(String line) throws ControlException {
        String t = line.strip();
        if (t.isEmpty()) {
            throw new ControlException("empty command (send 'help' for the list)");
        }
        return List.of(t.split("[ \t]+"));
    }

    private void run(List<String> w, Map<String, Object> reply) throws ControlException {
        String command = w.getFirst();
        switch (command) {
            case "devices" -> {
                arity(w, 0, 0, "devices");
                List<Object> list = new ArrayList<>();
                for (BlockDevice d : registry.devices()) {
                    list.add(describe(d));
                }
                reply.put("devices", list);
            }
            case "chain" -> {
                arity(w, 1, 1, "chain DEVICE");
                BlockDevice d = registry.device(w.get(1));
                reply.put("device", d.id());
                List<Object> entries = new ArrayList<>();
                HookChain chain = d.chain();
                for (int i = 0; i < chain.size(); i++) {
                    ChainEntry e = chain.entries().get(i);
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("position", i);
                    m.put("name", e.name());
                    m.put("version", e.version());
                    entries.add(m);
                }
                reply.put("chain", entries);
            }
            case "modules" -> {
                arity(w, 0, 1, "modules [DEVICE]");
                if (w.size() > 1) {
                    BlockDevice d = registry.device(w.get(1));
                    reply.put("device", d.id());
                    reply.put("modules", editor.sourceFor(d).available());
                } else {
                    reply.put("modules", modules.available());
                }
            }
            case "device-add" -> {
                if (w.size() < 2) {
                    throw new ControlException("device-add takes serve's options (usage: device-add --id ID --socket PATH --disk FILE ...)");
                }
                reply.put("device", admin().add(w.subList(1, w.size())));
            }
            case "device-remove" -> {
                arity(w, 1, 1, "device-remove DEVICE");
                admin().remove(w.get(1));
                reply.put("device", w.get(1));
                reply.put("removed", true);
            }
            case "enable" -> {
                arity(w, 2, 3, "enable DEVICE MODULE [POSITION]");
                BlockDevice d = registry.device(w.get(1));
                Integer position = w.size() > 3 ? position(w.get(3)) : null;
                chainReply(reply, d, editor.enable(d, w.get(2), position));
            }
            case "disable" -> {
                arity(w, 2, 2, "disable DEVICE MODULE");
                BlockDevice d = registry.device(w.get(1));
                chainReply(reply, d, editor.disable(d, w.get(2)));
            }
            case "move" -> {
                arity(w, 3, 3, "move DEVICE MODULE POSITION");
                BlockDevice d = registry.device(w.get(1));
                chainReply(reply, d, editor.move(d, w.get(2), position(w.get(3))));
            }
            case "counters" -> {
                arity(w, 1, 2, "counters DEVICE [MODULE]");
                BlockDevice d = registry.device(w.get(1));
                reply.put("device", d.id());
                if (w.size() > 2) {
                    ChainEntry e = enabled(d, w.get(2));
                    reply.put("module", e.name());
                    reply.put("counters", e.counters());
                } else {
                    Map<String, Object> all = new LinkedHashMap<>();
                    for (ChainEntry e : d.chain().entries()) {
                        all.put(e.name(), e.counters());
                    }
                    reply.put("modules", all);
                }
            }
            case "report" -> {
                arity(w, 2, 2, "report DEVICE MODULE");
                BlockDevice d = registry.device(w.get(1));
                ChainEntry e = enabled(d, w.get(2));
                reply.put("device", d.id());
                reply.put("module", e.name());
                reply.put("version", e.version());
                reply.put("report", report(d, e));
            }
            case "help" -> {
                arity(w, 0, 0, "help");
                reply.put("commands", COMMANDS);
            }
            default -> throw new ControlException("unknown command '" + shorten(command) + "' (send 'help' for the list)");
        }
    }

    private DeviceAdmin admin() throws ControlException {
        if (admin == null) {
            throw new ControlException("this server cannot add or remove devices");
        }
        return admin;
    }

    private static Map<String, Object> describe(BlockDevice d) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", d.id());
        m.put("vm", d.vmName());
        m.put("driver", d.driver().kind());
        m.put("target", d.driver().target());
        m.put("capacity", d.capacitySectors() << 9);
        m.put("readOnly", d.readOnly());
        m.put("writeback", d.writeback());
        m.put("chain", d.chain().names());
        FaultCounters faults = FaultyDriver.countersOf(d.driver());
        if (faults != null) {
            m.put("injectedFaults", faults.byKind()); // serve --inject: what the guest was made to see so far
        }
        return m;
    }

    private static void chainReply(Map<String, Object> reply, BlockDevice d, HookChain chain) {
        reply.put("device", d.id());
        reply.put("chain", chain.names());
    }

    private static ChainEntry enabled(BlockDevice d, String module) throws ControlException {
        return d.chain().find(module).orElseThrow(() -> new ControlException("module '" + shorten(module)
                + "' is not enabled on device " + d.id() + " (chain " + d.chain().names() + ")"));
    }

    /** The module's statistics; a module whose report fails is an error reply, logged with its stack. */
    private static Object report(BlockDevice d, ChainEntry e) throws ControlException {
        Map<String, Object> r;
        try {
            r = e.instance().report();
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, d.label() + " module=" + e.name() + ": report() failed", ex);
            throw new ControlException("module " + e.name() + " could not report: " + ex);
        }
        return r == null ? Map.of() : r;
    }

    private static Integer position(String s) throws ControlException {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw new ControlException("position '" + shorten(s) + "' is not a whole number");
        }
    }

    private static void arity(List<String> w, int min, int max, String usage) throws ControlException {
        int n = w.size() - 1;
        if (n < min || n > max) {
            throw new ControlException(w.getFirst() + " takes " + (min == max ? min : min + " to " + max)
                    + " argument(s), got " + n + " (usage: " + usage + ")");
        }
    }
}
