package io.vhostblk.modules.crypt;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the external tools the interop tests compare against; a missing tool fails naming its Debian package. */
final class Tools {

    static final HexFormat HEX = HexFormat.of();

    private Tools() {
    }

    record Result(int exit, byte[] stdout, String stderr) {
        String out() {
            return new String(stdout, StandardCharsets.UTF_8);
        }
    }

    /** Locates {@code tool} on PATH or in the sbin directories, failing the test with the package to install. */
    static String require(String tool, String debianPackage) {
        List<String> dirs = new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
        dirs.addAll(List.of("/usr/sbin", "/sbin", "/usr/bin", "/bin"));
        for (String d : dirs) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) {
                return Path.of(d, tool).toString();
            }
        }
        fail(tool + " not found: install the Debian package " + debianPackage + " (apt-get install -y " + debianPackage + ")");
        return null;
    }

    static Result run(byte[] stdin, String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).start();
        if (stdin != null) {
            p.getOutputStream().write(stdin);
        }
        p.getOutputStream().close();
        // Drain stderr on its own thread so a chatty tool cannot block on a full pipe.
        byte[][] err = new byte[1][];
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                err[0] = p.getErrorStream().readAllBytes();
            } catch (IOException e) {
                err[0] = ("(stderr unreadable: " + e.getMessage() + ")").getBytes(StandardCharsets.UTF_8);
            }
        });
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", command) + " timed out");
        }
        t.join();
        return new Result(p.exitValue(), out, new String(err[0], StandardCharsets.UTF_8));
    }

    static Result runOk(byte[] stdin, String... command) throws IOException, InterruptedException {
        Result r = run(stdin, command);
        if (r.exit() != 0) {
            fail(String.join(" ", command) + " exited " + r.exit() + ": " + r.stderr() + r.out());
        }
        return r;
    }

    /**
     * AES-256-XTS by OpenSSL's EVP_aes_256_xts, reached through python3-cryptography (OpenSSL 3's
     * {@code openssl enc} refuses XTS ciphers: "enc XTS ciphers not supported"). {@code data} is split into
     * units of {@code unitSize} bytes, unit i encrypted with tweak {@code tweaksHex[i]}; one process for all.
     */
    static byte[] opensslXts(byte[] key, int unitSize, List<String> tweaksHex, byte[] data) throws IOException, InterruptedException {
        // Debian's python3 is where python3-cryptography installs; a python3 earlier on PATH may lack it.
        String python = Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : require("python3", "python3-cryptography");
        String script = String.join("\n",
                "import sys",
                "try:",
                "    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes",
                "except ImportError:",
                "    sys.exit('python3 module cryptography missing: install the Debian package python3-cryptography')",
                "key, n = bytes.fromhex(sys.argv[1]), int(sys.argv[2])",
                "data = sys.stdin.buffer.read()",
                "for i, t in enumerate(sys.argv[3:]):",
                "    e = Cipher(algorithms.AES(key), modes.XTS(bytes.fromhex(t))).encryptor()",
                "    sys.stdout.buffer.write(e.update(data[i * n:(i + 1) * n]) + e.finalize())");
        List<String> cmd = new ArrayList<>(List.of(python, "-c", script, HEX.formatHex(key), Integer.toString(unitSize)));
        cmd.addAll(tweaksHex);
        return runOk(data, cmd.toArray(String[]::new)).stdout();
    }

    /** plain64 IV of a 512-byte sector number as openssl's -iv hex. */
    static String plain64(long sector) {
        byte[] iv = new byte[16];
        for (int i = 0; i < 8; i++) {
            iv[i] = (byte) (sector >>> (8 * i));
        }
        return HEX.formatHex(iv);
    }
}
