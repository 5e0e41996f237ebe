package io.vhostblk.qemutests;

import io.vhostblk.server.ControlClient;
import io.vhostblk.server.Json;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/** One request over a running server's control socket, its refusal or failure noted as a problem. */
final class Control {
    private Control() {
    }

    /** The reply to {@code command} when the server accepted it ({@code "ok": true}); else null and a problem. */
    static Map<?, ?> request(Path control, String command, Problems problems) {
        try (ControlClient c = ControlClient.connect(control)) {
            String reply = c.request(command);
            Map<?, ?> m = (Map<?, ?>) Json.parse(reply);
            if (!Boolean.TRUE.equals(m.get("ok"))) {
                problems.add("'" + command + "' over the control socket was refused: " + reply);
                return null;
            }
            return m;
        } catch (IOException | Json.ParseException | RuntimeException e) {
            problems.add("'" + command + "' over the control socket: " + e);
            return null;
        }
    }

    /** A module's report ({@code report DEVICE MODULE}), or null and a problem. */
    static Map<?, ?> report(Path control, String device, String module, Problems problems) {
        Map<?, ?> m = request(control, "report " + device + " " + module, problems);
        return m == null ? null : (Map<?, ?>) m.get("report");
    }
}
