package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.BlockResult;
import io.vhostblk.hooks.DeviceInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * What lies beneath the crypt hook in the tests: a synchronous file "driver" serving requests against the
 * image, for a {@link io.vhostblk.testsupport.RecordingHookContext} to answer them with.
 */
final class FileBelow implements AutoCloseable {

    final FileChannel image;
    final DeviceInfo device;
    final List<BlockOp> opsBelow = new ArrayList<>();

    FileBelow(Path path) throws IOException {
        this.image = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        this.device = new DeviceInfo("disk0", "vm0", "file", image.size(), false, path.toString());
    }

    /** Serves a request as a driver would: transfers through its iovec at its (already shifted) offset. */
    long serve(BlockRequest r) {
        opsBelow.add(r.op());
        try {
            switch (r.op()) {
                case READ, WRITE -> {
                    long pos = r.offset();
                    long left = r.length();
                    if (r.data().length() < left) {
                        return BlockResult.EINVAL;
                    }
                    byte[] bytes = new byte[(int) left];
                    ByteBuffer b = ByteBuffer.wrap(bytes);
                    if (r.op() == BlockOp.WRITE) {
                        r.data().copyTo(0, MemorySegment.ofArray(bytes), 0, left);
                    }
                    while (b.hasRemaining()) {
                        int k = r.op() == BlockOp.READ ? image.read(b, pos + b.position()) : image.write(b, pos + b.position());
                        if (k < 0) {
                            throw new IOException("read past the end at " + pos);
                        }
                    }
                    if (r.op() == BlockOp.READ) {
                        r.data().copyFrom(MemorySegment.ofArray(bytes), 0, 0, left);
                    }
                    return r.length();
                }
                case FLUSH -> {
                    image.force(true);
                    return 0;
                }
                default -> {
                    return 0;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    DeviceInfo device() {
        return device;
    }

    @Override
    public void close() throws IOException {
        image.close();
    }
}
