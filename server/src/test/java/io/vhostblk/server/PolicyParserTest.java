package io.vhostblk.server;

import io.vhostblk.hooks.ModuleException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PolicyParserTest {
    static final String A = "3f5a" + "0".repeat(60);
    static final String B = "ABCD" + "1".repeat(60);

    static Policy parse(String text) throws PolicyException {
        return PolicyParser.parse(Path.of("/etc/vhost-blk/web1.policy"), "web1.policy", Path.of("/etc/vhost-blk"),
                text.lines().toList());
    }

    @Test
    void readsTheDocumentedExample() throws Exception {
        Policy p = parse("""
                # policy for VM web1
                vm = web1
                module-dir = modules            # relative to the policy's directory
                compat-lib-sha256 = %s
                chain = stats, zero-detect

                [module zero-detect]
                jar = vhost-blk-module-zero-detect-0.1.0-SNAPSHOT.jar
                sha256 = %s
                set.unmap = false

                [module stats]
                jar = vhost-blk-module-stats-0.1.0-SNAPSHOT.jar
                sha256 = %s
                devices = disk*, root
                vms = web*
                drivers = io_uring, file
                enabled = false
                set.buckets = 32
                """.formatted(A, B, A));
        assertEquals("web1", p.vm());
        assertEquals(Path.of("/etc/vhost-blk/modules"), p.moduleDir());
        assertEquals(A, p.compatLibSha256());
        assertEquals(List.of("stats", "zero-detect"), p.chain(), "chain order, not declaration order");
        ModuleDeclaration stats = p.module("stats").orElseThrow();
        assertEquals("vhost-blk-module-stats-0.1.0-SNAPSHOT.jar", stats.jar());
        assertEquals(A, stats.sha256());
        assertEquals(new Selector(List.of("disk*", "root"), List.of("web*"), List.of("io_uring", "file")), stats.selector());
        assertFalse(stats.enabled());
        assertEquals("web1.policy:12", stats.origin());
        assertEquals("32", stats.settings().string("buckets", null));
        ModuleException e = assertThrows(ModuleException.class, () -> stats.settings().number("buckets", 0, 0, 8));
        assertEquals("web1.policy:19: module stats: setting buckets: 32 is outside 0..8", e.getMessage());
        ModuleDeclaration zd = p.module("zero-detect").orElseThrow();
        assertEquals(B.toLowerCase(), zd.sha256(), "digests are kept in lower case");
        assertTrue(zd.enabled());
        assertEquals(Selector.ANY, zd.selector());
    }

    @Test
    void withoutAChainTheOrderIsTheDeclarationOrder() throws Exception {
        Policy p = parse("""
                [module b]
                jar = b.jar
                sha256 = %s
                [module a]
                jar = a.jar
                sha256 = %s
                """.formatted(A, A));
        assertEquals(List.of("b", "a"), p.chain());
        assertNull(p.vm());
        assertNull(p.moduleDir());
        assertNull(p.compatLibSha256());
    }

    @Test
    void anEmptyPolicyHasNoModules() throws Exception {
        assertTrue(parse("# nothing yet\n\n").modules().isEmpty());
    }

    @Test
    void aHashInsideAValueIsNotAComment() throws Exception {
        Policy p = parse("[module a]\njar = dir#1/a.jar # the jar\nsha256 = " + A);
        assertEquals("dir#1/a.jar", p.module("a").orElseThrow().jar());
    }

    static Stream<Arguments> badPolicies() {
        String mod = "[module a]\njar = a.jar\nsha256 = " + A + "\n";
        return Stream.of(
                Arguments.of("colour = blue", "web1.policy:1: colour: unknown key (before the first section: vm, module-dir, compat-lib-sha256, chain)"),
                Arguments.of("jar = a.jar", "web1.policy:1: jar: belongs in a [module NAME] section"),
                Arguments.of("set.x = 1", "web1.policy:1: set.x: belongs in a [module NAME] section"),
                Arguments.of("vm web1", "web1.policy:1: vm web1: expected 'key = value', a [module NAME] section or a # comment"),
                Arguments.of("= web1", "web1.policy:1: '= web1': no key before '='"),
                Arguments.of("vm =", "web1.policy:1: vm: no value after '='"),
                Arguments.of("vm = a\nvm = b", "web1.policy:2: vm: set twice (first at line 1)"),
                Arguments.of("vm = web 1", "web1.policy:1: vm: 'web 1' contains white space"),
                Arguments.of("compat-lib-sha256 = 1234", "web1.policy:1: compat-lib-sha256: '1234' is not a SHA-256 digest (64 hex digits; sha256sum prints it)"),
                Arguments.of("[module a", "web1.policy:1: [module a: a section header ends with ']'"),
                Arguments.of("[modules a]", "web1.policy:1: [modules a]: unknown section; the only kind is [module NAME]"),
                Arguments.of("[module]", "web1.policy:1: [module]: unknown section; the only kind is [module NAME]"),
                Arguments.of("[module Cache]", "web1.policy:1: [module Cache]: a module name is lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"),
                Arguments.of(mod + mod, "web1.policy:4: [module a]: declared twice (first at line 1)"),
                Arguments.of("[module a]\nsha256 = " + A, "web1.policy:1: module a: jar: missing (every module needs jar and sha256)"),
                Arguments.of("# c\n[module a]\njar = a.jar", "web1.policy:2: module a: sha256: missing (every module needs jar and sha256)"),
                Arguments.of("[module a]\njar = a.jar\nsha256 = " + A.substring(1) + "g", "web1.policy:3: module a: sha256: '" + A.substring(1) + "g' is not a SHA-256 digest (64 hex digits; sha256sum prints it)"),
                Arguments.of("[module a]\njar = a.jar\nsha256 = " + A.substring(2), "web1.policy:3: module a: sha256: '" + A.substring(2) + "' is not a SHA-256 digest (64 hex digits; sha256sum prints it)"),
                Arguments.of(mod + "jarfile = x", "web1.policy:4: module a: jarfile: unknown key (a module section has jar, sha256, devices, vms, drivers, enabled and set.NAME)"),
                Arguments.of(mod + "chain = a", "web1.policy:4: module a: chain: belongs before the first [module NAME] section"),
                Arguments.of(mod + "jar = b.jar", "web1.policy:4: module a: jar: set twice (first at line 2)"),
                Arguments.of(mod + "set.x = 1\nset.x = 2", "web1.policy:5: module a: set.x: set twice (first at line 4)"),
                Arguments.of(mod + "set. = 1", "web1.policy:4: module a: set.: a setting is set.NAME, NAME being letters, digits, '.', '_', '-'"),
                Arguments.of(mod + "enabled = maybe", "web1.policy:4: module a: enabled: 'maybe' is not true or false"),
                Arguments.of(mod + "drivers = io_uring, floppy", "web1.policy:4: module a: drivers: unknown driver 'floppy' (drivers: io_uring, file, ram, null, rbd)"),
                Arguments.of(mod + "devices = disk0,, disk1", "web1.policy:4: module a: devices: empty entry in the comma-separated list 'disk0,, disk1'"),
                Arguments.of("chain = a, b\n" + mod, "web1.policy:1: chain: module b is not declared (no [module b] section)"),
                Arguments.of("chain = a, a\n" + mod, "web1.policy:1: chain: module a is listed twice"),
                Arguments.of("chain = a\n" + mod + "[module b]\njar = b.jar\nsha256 = " + A,
                        "web1.policy:5: [module b]: declared but not in chain (line 1); give it its place in the order (with enabled = false to keep it out at start) or remove it"));
    }

    @ParameterizedTest
    @MethodSource("badPolicies")
    void badPoliciesAreRefusedNamingLineAndField(String text, String message) {
        PolicyException e = assertThrows(PolicyException.class, () -> parse(text));
        assertEquals(message, e.getMessage());
    }

    @Test
    void aMissingFileIsNamed() {
        PolicyException e = assertThrows(PolicyException.class, () -> Policy.load(Path.of("/nonexistent/x.policy")));
        assertTrue(e.getMessage().startsWith("/nonexistent/x.policy: cannot read the policy"), e.getMessage());
    }

    @Test
    void aBinaryFileIsRefused() throws Exception {
        Path f = Files.createTempFile("bad", ".policy");
        try {
            Files.write(f, new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1});
            PolicyException e = assertThrows(PolicyException.class, () -> Policy.load(f));
            assertEquals(f + ": the policy is not UTF-8 text", e.getMessage());
        } finally {
            Files.delete(f);
        }
    }
}
