package io.vhostblk.server;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ServeModuleOptionsTest {
    private static ServeOptions parse(String... extra) throws UsageException {
        List<String> args = new java.util.ArrayList<>(List.of("--socket", "/tmp/s.sock", "--disk", "/tmp/d.img"));
        args.addAll(List.of(extra));
        return ServeOptions.parse(args);
    }

    @Test
    void policyAndModuleDir() throws Exception {
        ServeOptions o = parse("--policy", "/etc/vhost-blk/web1.policy", "--module-dir", "/opt/mods");
        assertEquals(Path.of("/etc/vhost-blk/web1.policy"), o.policy());
        assertEquals(Path.of("/opt/mods"), o.moduleDir());
        assertNull(parse().policy());
    }

    @Test
    void moduleDirAloneIsRefused() {
        UsageException e = assertThrows(UsageException.class, () -> parse("--module-dir", "/opt/mods"));
        assertEquals("--module-dir needs --policy (the policy names the jars and their digests)", e.getMessage());
    }

    @Test
    void theModuleDirIsTheOptionsElseThePolicysElseThePolicyFilesDirectory() throws Exception {
        Policy withDir = new Policy(Path.of("/etc/p/web1.policy"), null, Path.of("/var/lib/mods"), null, List.of());
        Policy without = new Policy(Path.of("/etc/p/web1.policy"), null, null, null, List.of());
        ServeOptions o = parse("--policy", "/etc/p/web1.policy");
        assertEquals(Path.of("/var/lib/mods"), ModuleSetup.moduleDir(o, withDir));
        assertEquals(Path.of("/etc/p"), ModuleSetup.moduleDir(o, without));
        assertEquals(Path.of("/opt/mods"), ModuleSetup.moduleDir(parse("--policy", "x", "--module-dir", "/opt/mods"), withDir));
    }

    @Test
    void theVmNameComesFromThePolicyUnlessGivenAndBothMustAgree() throws Exception {
        Policy web1 = new Policy(Path.of("web1.policy"), "web1", null, null, List.of());
        assertEquals("web1", ModuleSetup.vmName(parse(), web1));
        assertEquals("web1", ModuleSetup.vmName(parse("--vm", "web1"), web1));
        assertEquals("db2", ModuleSetup.vmName(parse("--vm", "db2"), Policy.none()));
        assertEquals(ServeOptions.UNKNOWN_VM, ModuleSetup.vmName(parse(), Policy.none()));
        StartupException e = assertThrows(StartupException.class, () -> ModuleSetup.vmName(parse("--vm", "db2"), web1));
        assertEquals("web1.policy: vm: the policy is for VM web1, but --vm says db2", e.getMessage());
    }
}
