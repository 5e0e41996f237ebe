package io.vhostblk.hooks;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class AbstractHookModuleTest {

    static final class Named extends AbstractHookModule {
        Named() {
            super("named", "1.2.3");
        }

        @Override
        public ModuleInstance create(DeviceInfo device, ModuleSettings settings) {
            throw new UnsupportedOperationException("not attached in this test");
        }

        String labelOf(DeviceInfo device) {
            return label(device);
        }
    }

    @Test
    void aModuleKeepsItsNameAndVersionAndLabelsDevicesAsTheServerDoes() {
        Named m = new Named();
        assertEquals("named", m.name());
        assertEquals("1.2.3", m.version());
        DeviceInfo device = new DeviceInfo("disk0", "web1", "file", 1 << 20, false, "/img");
        assertEquals("vm=web1 device=disk0", device.label());
        assertEquals("vm=web1 device=disk0 module=named", m.labelOf(device));
    }
}
