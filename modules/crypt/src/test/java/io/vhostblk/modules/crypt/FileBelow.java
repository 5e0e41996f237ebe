package io.vhostblk.modules.crypt;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookContext;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * What lies beneath the crypt hook in the tests: a synchronous file "driver" serving requests against the
 * image, and the {@link HookContext} (tasks queued until {@link #runTasks()}, completions recorded).
 */
final class FileBelow implements HookContext, AutoCloseable {

    final FileChannel image;
    final DeviceInfo device;
    final ArrayDeque<Runnable> tasks = new ArrayDeque<>();
    final List<Completed> completed = new ArrayList<>();
    final List<BlockOp> opsBelow = new ArrayList<>();
    private int nextSlot = 1000;

    record Completed(BlockRequest request, long result) {
    }

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
                    for (int i = 0; i < r.iovCount() && left > 0; i++) {
                        long n = Math.min(IovCursor.length(r.iov(), i), left);
                        ByteBuffer b = IovCursor.ALL.asSlice(IovCursor.base(r.iov(), i), n).asByteBuffer();
                        while (b.hasRemaining()) {
                            int k = r.op() == BlockOp.READ ? image.read(b, pos + b.position()) : image.write(b, pos + b.position());
                            if (k < 0) {
                                throw new IOException("read past the end at " + pos);
                            }
                        }
                        pos += n;
                        left -= n;
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

    void runTasks() {
        Runnable t;
        while ((t = tasks.poll()) != null) {
            t.run();
        }
    }

    @Override
    public DeviceInfo device() {
        return device;
    }

    @Override
    public int queueIndex() {
        return 0;
    }

    @Override
    public void complete(BlockRequest request, long result) {
        completed.add(new Completed(request, result));
    }

    @Override
    public void execute(Runnable task) {
        tasks.add(task);
    }

    @Override
    public BlockRequest newRequest() {
        return new BlockRequest(nextSlot++, "disk0", 0);
    }

    @Override
    public void submitBelow(BlockRequest request, DriverCompletion done) {
        done.complete(request, serve(request));
    }

    @Override
    public void close() throws IOException {
        image.close();
    }
}
