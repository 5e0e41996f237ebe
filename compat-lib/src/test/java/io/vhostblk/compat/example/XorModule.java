package io.vhostblk.compat.example;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.DeviceInfo;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookContext;
import io.vhostblk.hooks.HookModule;
import io.vhostblk.hooks.ModuleException;
import io.vhostblk.hooks.ModuleInstance;
import io.vhostblk.hooks.ModuleSettings;
import io.vhostblk.hooks.PerQueueInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The example of docs/modules.md: a transforming module that stores every byte XORed with a key
 * (setting {@code key}, 1..255). Writes are transformed into a bounce buffer and sent below as a child
 * request (the guest's data is device-readable: never written); reads go below as a child into the
 * guest's own buffers and are transformed back in place when they complete.
 */
public final class XorModule implements HookModule {
    /** Largest write the example serves (a real module would cut larger ones into pieces). */
    static final int MAX_WRITE = 1 << 20;

    @Override
    public String name() {
        return "xor";
    }

    @Override
    public String version() {
        return "1.0";
    }

    @Override
    public ModuleInstance create(DeviceInfo device, ModuleSettings settings) throws ModuleException {
        settings.allowOnly("key");
        byte key = (byte) settings.number("key", 0x5a, 1, 255);
        return new PerQueueInstance<XorHook>() {
            @Override
            protected XorHook newQueueHook(HookContext context) {
                return new XorHook(context, key);
            }
        };
    }

    /** One queue's hook; runs on that queue's event loop only, so it needs no locks. */
    static final class XorHook implements BlockHook {
        private final HookContext context;
        private final byte key;
        // Made once per queue: nothing is allocated per request.
        private final Arena arena = Arena.ofAuto();
        private final MemorySegment bounce = arena.allocate(MAX_WRITE, 4096);
        private final IoVector bounceData = new IoVector(1);
        private final DriverCompletion writeDone = this::writeDone;
        private final DriverCompletion readDone = this::readDone;
        private boolean bounceBusy;
        long transformed;

        XorHook(HookContext context, byte key) {
            this.context = context;
            this.key = key;
        }

        @Override
        public HookAction beforeDriver(BlockRequest r) {
            switch (r.op()) {
                case WRITE -> {
                    if (r.length() > MAX_WRITE || bounceBusy || r.data().length() < r.length()) {
                        r.result(-5); // -EIO: the example keeps one bounce buffer per queue
                        return HookAction.COMPLETE;
                    }
                    int n = (int) r.length();
                    r.data().copyTo(0, bounce, 0, n); // read the guest's data; never write it
                    xor(bounce, n);
                    bounceBusy = true;
                    BlockRequest child = context.child(r)
                            .set(BlockOp.WRITE, r.offset(), n, bounceData.wrap(bounce, 0, n, false), false);
                    context.submitBelow(child, writeDone);
                    return HookAction.TAKE_OVER;
                }
                case READ -> {
                    BlockRequest child = context.child(r).set(BlockOp.READ, r.offset(), r.length(), r.data(), false);
                    context.submitBelow(child, readDone);
                    return HookAction.TAKE_OVER;
                }
                default -> {
                    return HookAction.PASS; // FLUSH, DISCARD, WRITE_ZEROES: nothing to transform (zeros stay zeros only for key 0)
                }
            }
        }

        private void writeDone(BlockRequest child, long result) {
            bounceBusy = false;
            context.complete(child.parent(), result);
        }

        private void readDone(BlockRequest child, long result) {
            BlockRequest r = child.parent();
            if (result >= 0) {
                // The guest's read buffers are device-writable: transform in place, piece by piece.
                IoVector.Cursor c = r.data().cursor();
                while (c.contiguous() > 0) {
                    long n = c.contiguous();
                    MemorySegment piece = c.segment();
                    long at = c.segmentOffset();
                    for (long i = 0; i < n; i++) {
                        piece.set(ValueLayout.JAVA_BYTE, at + i, (byte) (piece.get(ValueLayout.JAVA_BYTE, at + i) ^ key));
                    }
                    c.advance(n);
                }
                transformed += r.length();
            }
            context.complete(r, result);
        }

        private void xor(MemorySegment buffer, int n) {
            for (int i = 0; i < n; i++) {
                buffer.set(ValueLayout.JAVA_BYTE, i, (byte) (buffer.get(ValueLayout.JAVA_BYTE, i) ^ key));
            }
            transformed += n;
        }
    }
}
