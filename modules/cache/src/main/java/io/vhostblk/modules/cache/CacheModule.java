package io.vhostblk.modules.cache;

import io.vhostblk.drivers.BlockDriver;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverKind;
import io.vhostblk.drivers.DriverOptions;
import io.vhostblk.drivers.Drivers;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.AbstractHookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;

/** {@code cache}: hot blocks of a device on a local cache device, read cache or write-back cache (docs/cache.md). */
public final class CacheModule extends AbstractHookModule {

    private static final System.Logger LOG = System.getLogger(CacheModule.class.getName());
    static final String NAME = "cache";
    static final String VERSION = "0.1.0";

    public CacheModule() {
        super(NAME, VERSION);
    }

    @Override
    public ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
        CacheSettings s = CacheSettings.of(settings, device);
        String label = label(device);
        if (device.readOnly() && s.mode() == CacheEngine.Mode.WRITE_BACK) {
            throw settings.error("mode", "the device is read-only; a write-back cache has nothing to write back");
        }
        CacheFile.Opened opened;
        try {
            opened = CacheFile.open(s.cacheFile(), s.size(), s.blockSize(), s.volume(), device.capacity());
        } catch (CacheException e) {
            throw new ModuleException(label + ": " + e.getMessage(), e);
        }
        CacheEngine engine = new CacheEngine(opened.header(), opened.table(), s.mode(), s.writebackBytesPerS(), label);
        if (engine.dirtyBlocks() > 0 && s.mode() != CacheEngine.Mode.WRITE_BACK) {
            engine.close();
            throw settings.error("mode", s.mode().word + " asked, but " + s.cacheFile() + " holds " + engine.dirtyBlocks()
                    + " dirty blocks of a write-back cache; attach it with mode write-back (they are written back), or "
                    + "write them back first: vhost-blk cache flush " + s.cacheFile() + " IMAGE");
        }
        BlockDriver driver;
        try {
            driver = Drivers.open(DriverKind.AUTO, s.cacheFile(), -1, false, DriverOptions.DEFAULTS);
        } catch (DriverException e) {
            engine.close();
            throw new ModuleException(label + ": cannot open the cache device " + s.cacheFile() + ": " + e.getMessage(), e);
        }
        LOG.log(System.Logger.Level.INFO, label + ": " + s.mode().word + " cache of " + opened.header().slots() + " blocks of "
                + s.blockSize() + " bytes on " + s.cacheFile() + " (" + driver.kind() + ")"
                + (opened.formatted() ? ", newly formatted" : ", reopened with " + engine.dirtyBlocks() + " dirty blocks"));
        return new CacheDevice(label, engine, CacheDeviceIo.through(driver, device.deviceId()), s.cacheFile().toString(),
                true, CacheFile.tableWriter(s.cacheFile()));
    }
}
