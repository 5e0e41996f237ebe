package io.vhostblk.server;

import java.util.List;

/** What the control socket's {@code device-add} and {@code device-remove} act on: the process's devices. */
public interface DeviceAdmin {

    /** Starts serving a device given by {@code serve}'s options; returns its id. */
    String add(List<String> serveArgs) throws ControlException;

    /** Drains and syncs device {@code id}, then stops serving it. */
    void remove(String id) throws ControlException;
}
