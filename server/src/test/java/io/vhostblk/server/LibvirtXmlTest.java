package io.vhostblk.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.xpath.XPathFactory;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;

class LibvirtXmlTest {

    private static String xml(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> cmd = new java.util.ArrayList<>(List.of("xml"));
        cmd.addAll(List.of(args));
        int status = VhostBlkMain.run(cmd, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, status, err.toString(StandardCharsets.UTF_8));
        return out.toString(StandardCharsets.UTF_8);
    }

    private static Document parse(String xml) throws Exception {
        return DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
    }

    private static String xpath(Document doc, String expr) throws Exception {
        return XPathFactory.newInstance().newXPath().evaluate(expr, doc);
    }

    /** Runs libvirt's own schema check (Debian libvirt-clients + libxml2-utils; bin/run-tests installs them). */
    private static void validate(Path file) throws Exception {
        Path tool = Path.of("/usr/bin/virt-xml-validate");
        if (!Files.isExecutable(tool)) {
            fail("virt-xml-validate is missing: install the Debian packages libvirt-clients and libxml2-utils (bin/run-tests does)");
        }
        Process p = new ProcessBuilder(tool.toString(), file.toString(), "domain").redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "virt-xml-validate did not finish");
        assertEquals(0, p.exitValue(), "libvirt's schema refused the domain XML:\n" + output + "\n" + Files.readString(file));
    }

    @Test
    void aWholeDomainValidatesAgainstLibvirtsSchema(@TempDir Path dir) throws Exception {
        String out = xml("--socket", dir.resolve("vb.sock").toString(), "--queues", "2", "--target", "vdb",
                "--reconnect", "5", "--domain", "web1", "--memory", "512M", "--vcpus", "2", "--type", "qemu",
                "--emulator", "/usr/bin/qemu-system-x86_64", "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img",
                "--cmdline", "console=ttyS0 root=/dev/vdb");
        Path file = dir.resolve("web1.xml");
        Files.writeString(file, out);
        validate(file);

        Document doc = parse(out);
        assertEquals("qemu", xpath(doc, "/domain/@type"));
        assertEquals("web1", xpath(doc, "/domain/name"));
        assertEquals(Long.toString(512 * 1024), xpath(doc, "/domain/memory"));
        assertEquals("memfd", xpath(doc, "/domain/memoryBacking/source/@type"));
        assertEquals("shared", xpath(doc, "/domain/memoryBacking/access/@mode"));
        assertEquals("vhostuser", xpath(doc, "/domain/devices/disk/@type"));
        assertEquals("unix", xpath(doc, "/domain/devices/disk/source/@type"));
        assertEquals(dir.resolve("vb.sock").toAbsolutePath().toString(), xpath(doc, "/domain/devices/disk/source/@path"));
        assertEquals("yes", xpath(doc, "/domain/devices/disk/source/reconnect/@enabled"));
        assertEquals("5", xpath(doc, "/domain/devices/disk/source/reconnect/@timeout"));
        assertEquals("2", xpath(doc, "/domain/devices/disk/driver/@queues"));
        assertEquals("vdb", xpath(doc, "/domain/devices/disk/target/@dev"));
        assertEquals("virtio", xpath(doc, "/domain/devices/disk/target/@bus"));
        assertEquals("console=ttyS0 root=/dev/vdb", xpath(doc, "/domain/os/cmdline"));
    }

    @Test
    void fragmentsAreTheDiskAndTheMemoryBacking(@TempDir Path dir) throws Exception {
        String out = xml("--socket", dir.resolve("a&b'.sock").toString(), "--reconnect", "0");
        // The fragments pasted into a minimal domain validate too: that is how a user uses them.
        String domain = "<domain type='kvm'><name>t</name><memory unit='KiB'>524288</memory>"
                + out.substring(out.indexOf("<memoryBacking>"), out.indexOf("<!-- vhost-blk: add under"))
                + "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
                + out.substring(out.indexOf("<disk ")) + "</devices></domain>";
        Path file = dir.resolve("frag.xml");
        Files.writeString(file, domain);
        validate(file);
        Document doc = parse(domain);
        assertEquals(dir.resolve("a&b'.sock").toAbsolutePath().toString(), xpath(doc, "/domain/devices/disk/source/@path"));
        assertEquals("1", xpath(doc, "/domain/devices/disk/driver/@queues"));
        assertFalse(out.contains("<reconnect"), "--reconnect 0 leaves reconnection off");
    }

    @Test
    void aDeviceOfAHostConfigurationGivesItsSocketAndQueues(@TempDir Path dir) throws Exception {
        Path config = Files.writeString(dir.resolve("host.conf"), "[device web1]\nsocket = web1.sock\ndisk = web1.img\nqueues = 4\n"
                + "[device web2]\nsocket = web2.sock\ndisk = web2.img\n");
        Document doc = parse(xml("--config", config.toString(), "web1", "--domain", "web1"));
        assertEquals(dir.resolve("web1.sock").toAbsolutePath().toString(), xpath(doc, "/domain/devices/disk/source/@path"));
        assertEquals("4", xpath(doc, "/domain/devices/disk/driver/@queues"));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        assertEquals(2, VhostBlkMain.run(List.of("xml", "--config", config.toString(), "web3"),
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8)));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("no device 'web3'"), err.toString(StandardCharsets.UTF_8));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("web1, web2"), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void badOptionsNameTheOption() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        PrintStream o = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        assertEquals(2, VhostBlkMain.run(List.of("xml"), o, e));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--socket is required"));
        err.reset();
        assertEquals(2, VhostBlkMain.run(List.of("xml", "--socket", "/s", "--target", "sda"), o, e));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--target"));
        err.reset();
        assertEquals(2, VhostBlkMain.run(List.of("xml", "--socket", "/s", "--memory", "1G"), o, e));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("need --domain"));
        assertThrows(UsageException.class, () -> XmlCommand.parse(List.of("--socket", "/s", "--type", "xen", "--domain", "d")));
        assertThrows(UsageException.class, () -> XmlCommand.parse(List.of("--socket", "/s", "web1")));
    }
}
