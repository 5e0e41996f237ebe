package io.vhostblk.modules.crypt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class AfSplitterTest {

    @Test
    void splitThenMergeRecoversTheKeyAndEveryStripeMatters() {
        byte[] key = new byte[64];
        new SecureRandom().nextBytes(key);
        byte[] material = AfSplitter.split(key, 4000, HashSpec.SHA256, new SecureRandom());
        assertEquals(64 * 4000, material.length);
        assertArrayEquals(key, AfSplitter.merge(material, 64, 4000, HashSpec.SHA256));
        material[12345] ^= 1;
        assertFalse(Arrays.equals(key, AfSplitter.merge(material, 64, 4000, HashSpec.SHA256)));
    }

    /** H for a 64-byte buffer and SHA-256: two pieces, each sha256(be32(j) || piece_j). */
    @Test
    void diffuseHashesEachPieceWithItsBigEndianIndex() throws Exception {
        byte[] buf = new byte[40];
        for (int i = 0; i < buf.length; i++) {
            buf[i] = (byte) i;
        }
        byte[] original = buf.clone();
        AfSplitter.diffuse(MessageDigest.getInstance("SHA-256"), buf, new byte[32]);
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        md.update(new byte[] {0, 0, 0, 0});
        md.update(original, 0, 32);
        assertArrayEquals(md.digest(), Arrays.copyOfRange(buf, 0, 32));
        md.update(new byte[] {0, 0, 0, 1});
        md.update(original, 32, 8);
        assertArrayEquals(Arrays.copyOf(md.digest(), 8), Arrays.copyOfRange(buf, 32, 40));
    }

    @Test
    void pbkdf2MatchesRfc7914Vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64).
        byte[] out = Pbkdf2.derive(HashSpec.SHA256, "passwd".getBytes(), "salt".getBytes(), 1, 64);
        assertEquals("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783", Tools.HEX.formatHex(out));
    }
}
