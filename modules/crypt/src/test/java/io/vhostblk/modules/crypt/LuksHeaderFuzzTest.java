package io.vhostblk.modules.crypt;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzing with a fixed seed: LUKS1 and LUKS2 headers with bytes flipped, numbers in the LUKS2 JSON
 * replaced (with the checksum made right again, so the JSON parser and the checks behind it see
 * them), or the image cut short. Reading such a header ({@link LuksVolume#dump}: parse, checks,
 * key slots) answers or fails with an {@link IOException} naming the problem; nothing else is ever
 * thrown. {@code -Dvhostblk.fuzz.iterations=N} runs more, {@code -Dvhostblk.fuzz.seed=S} others.
 */
class LuksHeaderFuzzTest {
    private static final int ITERATIONS = Integer.getInteger("vhostblk.fuzz.iterations", 3_000);
    private static final long SEED = Long.getLong("vhostblk.fuzz.seed", 20261130);
    private static final Pattern NUMBER = Pattern.compile("-?[0-9]+");
    private static final String[] NUMBERS = {"0", "-1", "1", "511", "513", "4096", "4294967296", "9223372036854775807",
            "9223372036854775808", "-9223372036854775808", "99999999999999999999999", "16384", "2147483648"};

    @TempDir
    Path dir;

    @Test
    void luks1HeadersAnswerOrFailWithAReason() throws Exception {
        fuzz(LuksVersion.LUKS1, 4096);
    }

    @Test
    void luks2HeadersAnswerOrFailWithAReason() throws Exception {
        fuzz(LuksVersion.LUKS2, 2 * Luks2Header.DEFAULT_HDR_SIZE);
    }

    private void fuzz(LuksVersion version, int headerBytes) throws Exception {
        Path valid = dir.resolve("valid.img");
        try (Secret s = Secret.copyOf("fuzz".getBytes(StandardCharsets.US_ASCII))) {
            LuksVolume.format(valid, s, LuksTestSupport.fast(version, 512));
        }
        byte[] original = new byte[headerBytes];
        try (FileChannel ch = FileChannel.open(valid)) {
            ch.read(ByteBuffer.wrap(original), 0);
        }
        long imageSize = Files.size(valid);
        Path img = dir.resolve("mutated.img");
        SplittableRandom random = new SplittableRandom(SEED + version.ordinal());
        int answered = 0;
        for (int n = 0; n < ITERATIONS; n++) {
            byte[] bytes = original.clone();
            String what = mutate(version, bytes, random);
            long size = random.nextInt(10) == 0 ? random.nextLong(headerBytes + 1) : imageSize;
            try (FileChannel ch = FileChannel.open(img, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ch.write(ByteBuffer.wrap(bytes, 0, (int) Math.min(bytes.length, size)), 0);
                if (size > bytes.length) {
                    ch.write(ByteBuffer.allocate(1), size - 1);
                }
            }
            try {
                LuksVolume.dump(img);
                answered++;
            } catch (IOException refused) {
                assertTrue(refused.getMessage() != null && !refused.getMessage().isBlank(), "an error without a reason");
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw new AssertionError(version + " iteration " + n + " (seed " + SEED + "): " + what + ", size " + size
                        + ": dump threw " + e, e);
            }
        }
        System.out.println("[fuzz] " + version + " headers: " + ITERATIONS + " iterations, " + answered + " still readable (seed " + SEED + ")");
    }

    /** Changes the header in place; returns what it did, for the failure message. */
    private static String mutate(LuksVersion version, byte[] bytes, SplittableRandom random) throws Exception {
        if (version == LuksVersion.LUKS2 && random.nextBoolean()) {
            int hdr = Luks2Header.DEFAULT_HDR_SIZE;
            String json = new String(bytes, Luks2Header.BINARY_SIZE, hdr - Luks2Header.BINARY_SIZE, StandardCharsets.US_ASCII);
            int end = json.indexOf('\0');
            Matcher m = NUMBER.matcher(json.substring(0, end < 0 ? json.length() : end));
            int count = 0;
            while (m.find()) {
                count++;
            }
            if (count > 0) {
                int pick = random.nextInt(count);
                m.reset();
                for (int i = 0; i <= pick; i++) {
                    m.find();
                }
                String replacement = random.nextBoolean() ? NUMBERS[random.nextInt(NUMBERS.length)] : Long.toString(random.nextLong());
                String changed = json.substring(0, m.start()) + replacement + json.substring(m.end());
                byte[] text = changed.getBytes(StandardCharsets.US_ASCII);
                Arrays.fill(bytes, Luks2Header.BINARY_SIZE, hdr, (byte) 0);
                System.arraycopy(text, 0, bytes, Luks2Header.BINARY_SIZE, Math.min(text.length, hdr - Luks2Header.BINARY_SIZE));
                fixChecksum(bytes, hdr);
                return "JSON number '" + m.group() + "' at " + m.start() + " -> '" + replacement + "'";
            }
        }
        int flips = 1 + random.nextInt(8);
        int span = version == LuksVersion.LUKS1 ? 592 : (random.nextBoolean() ? 512 : bytes.length);
        StringBuilder what = new StringBuilder("bytes");
        for (int i = 0; i < flips; i++) {
            int at = random.nextInt(span);
            bytes[at] = (byte) random.nextInt(256);
            what.append(' ').append(at);
        }
        if (version == LuksVersion.LUKS2 && random.nextBoolean()) {
            fixChecksum(bytes, Luks2Header.DEFAULT_HDR_SIZE);
            what.append(", checksum fixed");
        }
        return what.toString();
    }

    /** SHA-256 of the primary copy with its checksum field zeroed, stored at offset 448. */
    private static void fixChecksum(byte[] bytes, int hdrSize) throws Exception {
        byte[] area = Arrays.copyOf(bytes, hdrSize);
        Arrays.fill(area, 448, 448 + 64, (byte) 0);
        byte[] sum = MessageDigest.getInstance("SHA-256").digest(area);
        Arrays.fill(bytes, 448, 448 + 64, (byte) 0);
        System.arraycopy(sum, 0, bytes, 448, sum.length);
    }
}
