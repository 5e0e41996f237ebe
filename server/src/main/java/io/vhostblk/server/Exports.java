package io.vhostblk.server;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The devices one process serves, by id: started from the command line, a host configuration or
 * the control socket's {@code device-add}, each stopped on its own. One device's failure to start
 * or stop does not touch the others.
 */
final class Exports implements DeviceAdmin {
    private static final System.Logger LOG = System.getLogger(Exports.class.getName());

    private final DeviceRegistry registry;
    private final Map<String, Export> exports = new LinkedHashMap<>();

    Exports(DeviceRegistry registry) {
        this.registry = registry;
    }

    /** Starts serving {@code options}' device. */
    Export start(ServeOptions options) throws StartupException {
        synchronized (this) {
            if (exports.containsKey(options.deviceId())) {
                throw new StartupException("a device with id '" + options.deviceId() + "' is already served", null);
            }
        }
        Export e = Export.start(options, registry);
        synchronized (this) {
            exports.put(e.id(), e);
        }
        return e;
    }

    @Override
    public String add(List<String> serveArgs) throws ControlException {
        ServeOptions options;
        try {
            options = ServeOptions.parse(serveArgs);
        } catch (UsageException e) {
            throw new ControlException("device-add: " + e.getMessage());
        }
        if (options.control() != null) {
            throw new ControlException("device-add: --control is the process's, not a device's");
        }
        try {
            return start(options).id();
        } catch (StartupException e) {
            throw new ControlException("device-add: " + e.getMessage());
        }
    }

    @Override
    public void remove(String id) throws ControlException {
        Export e;
        synchronized (this) {
            e = exports.remove(id);
        }
        if (e == null) {
            throw new ControlException("device-remove: no device '" + ControlProtocol.shorten(id) + "' (devices: "
                    + String.join(", ", ids()) + ")");
        }
        if (!e.stop()) {
            throw new ControlException("device-remove: " + id + " stopped, but syncing its image failed (see the log)");
        }
    }

    /** The ids being served, in start order. */
    synchronized List<String> ids() {
        return List.copyOf(exports.keySet());
    }

    /** Stops every device (at process exit); returns false if any image failed to sync. */
    boolean stopAll() {
        List<Export> all;
        synchronized (this) {
            all = new ArrayList<>(exports.values());
            exports.clear();
        }
        boolean ok = true;
        for (Export e : all.reversed()) {
            try {
                ok &= e.stop();
            } catch (RuntimeException ex) {
                LOG.log(Level.ERROR, e.device().label() + ": stopping failed", ex);
                ok = false;
            }
        }
        return ok;
    }
}
