package io.vhostblk.compat;

import io.vhostblk.drivers.BlockOp;
import io.vhostblk.drivers.BlockRequest;
import io.vhostblk.drivers.DriverCompletion;
import io.vhostblk.drivers.DriverException;
import io.vhostblk.drivers.DriverQueue;
import io.vhostblk.drivers.IoVector;
import io.vhostblk.drivers.KickAware;
import io.vhostblk.hooks.BlockHook;
import io.vhostblk.hooks.ChainEntry;
import io.vhostblk.hooks.HookAction;
import io.vhostblk.hooks.HookChain;
import io.vhostblk.hooks.HookCounters;
import io.vhostblk.linux.Errno;
import io.vhostblk.linux.EventFd;
import io.vhostblk.linux.LinuxException;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Runs requests of one queue through the device's hook chain and the driver: the pre-call loop
 * (point ①), the driver, the completion loop (point ②) innermost first, per-module counters, and
 * the fence that turns a module's exception into an I/O error for that request and takes the module
 * out of the chain. Also the queue's module services: the mailbox, module-owned and child requests.
 *
 * <p>Every request it runs has a slot: guest requests the slots below {@code guestSlots}, module
 * requests the slots after. Per-slot state sits in arrays, so nothing is allocated per I/O. Owned by
 * the queue's event loop.
 */
final class HookRunner implements DriverCompletion, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(HookRunner.class.getName());

    private final BlockDevice device;
    private final int queueIndex;
    private final DriverQueue driverQueue;
    private final Map<ChainEntry, HookState> opened = new IdentityHashMap<>();
    private final ConcurrentLinkedQueue<Runnable> mailbox = new ConcurrentLinkedQueue<>();
    private final EventFd mailboxSignal;
    private volatile EventFd loopDoorbell;
    private QueueHooks queueHooks;
    private int moduleInFlight;

    // Per slot: what the request runs through, how deep it got, who gets its result, and what it was
    // when it went in (a hook must not change a request it is given).
    private QueueHooks[] hooksOf;
    private int[] start;
    private int[] depth;
    private DriverCompletion[] done;
    private ChainEntry[] owner;
    private BlockOp[] opIn;
    private long[] offsetIn;
    private long[] lengthIn;
    private IoVector[] dataIn;
    private final List<BlockRequest> moduleRequests = new ArrayList<>();
    /** Driver queues modules opened themselves and this loop serves ({@link #attach}). */
    private final List<AttachedQueue> attached = new ArrayList<>();
    private final int guestSlots;

    /** A module's hook on this queue, its counters here, and the context it was given. */
    private record HookState(BlockHook hook, HookCounters counters, QueueHookContext context) {
    }

    HookRunner(BlockDevice device, int queueIndex, int guestSlots) throws DriverException {
        this.device = device;
        this.queueIndex = queueIndex;
        this.guestSlots = guestSlots;
        hooksOf = new QueueHooks[guestSlots];
        start = new int[guestSlots];
        depth = new int[guestSlots];
        done = new DriverCompletion[guestSlots];
        owner = new ChainEntry[guestSlots];
        opIn = new BlockOp[guestSlots];
        offsetIn = new long[guestSlots];
        lengthIn = new long[guestSlots];
        dataIn = new IoVector[guestSlots];
        try {
            this.mailboxSignal = EventFd.create(true);
        } catch (LinuxException e) {
            throw new DriverException(device.label() + " queue=" + queueIndex + ": cannot create the module mailbox eventfd", e);
        }
        this.driverQueue = device.driver().openQueue(queueIndex, this);
    }

    /**
     * Runs a guest request: through the device's hooks when it has any, then the driver; {@code onDone}
     * gets the result after the completion hooks.
     */
    void submit(BlockRequest r, DriverCompletion onDone) {
        int slot = r.slot();
        done[slot] = onDone;
        HookChain chain = device.hooks();
        if (chain == null) {
            hooksOf[slot] = null;
            driverQueue.submit(r);
            return;
        }
        if (device.failure() != null) {
            // Only a device with modules can fail closed, so the check costs nothing without them.
            hooksOf[slot] = null;
            finish(r, -Errno.EIO);
            return;
        }
        QueueHooks qh = queueHooks(chain);
        hooksOf[slot] = qh;
        start[slot] = 0;
        if (preCall(r, qh, 0)) {
            driverQueue.submit(r);
        }
    }

    /** A module's own or child request, sent to the hooks after its owner and then the driver. */
    void submitBelow(ChainEntry entry, BlockRequest r, DriverCompletion onDone) {
        int slot = r.slot();
        if (slot < guestSlots || slot - guestSlots >= moduleRequests.size() || moduleRequests.get(slot - guestSlots) != r
                || owner[slot] != entry || done[slot] != null) {
            throw new IllegalStateException("module " + entry.name() + " submitted a request it does not own or that is in flight: " + r);
        }
        done[slot] = onDone;
        moduleInFlight++;
        HookChain chain = device.hooks();
        QueueHooks qh = chain == null ? null : queueHooks(chain);
        int below = qh == null ? -1 : qh.indexOf(entry);
        if (qh == null || below < 0) {
            // The module left the chain meanwhile: nothing sits beneath it but the driver.
            hooksOf[slot] = null;
            driverQueue.submit(r);
            return;
        }
        hooksOf[slot] = qh;
        start[slot] = below + 1;
        if (preCall(r, qh, below + 1)) {
            driverQueue.submit(r);
        }
    }

    /**
     * Point ①: runs the pre-call hooks from {@code from} on. Returns whether the driver is to be
     * called; otherwise a hook answered, took over, or failed the request.
     */
    private boolean preCall(BlockRequest r, QueueHooks qh, int from) {
        int slot = r.slot();
        remember(r);
        for (int i = from; i < qh.size(); i++) {
            HookCounters c = qh.counters[i];
            c.seen++;
            if (r.op() == BlockOp.READ || r.op() == BlockOp.WRITE) {
                c.bytes += r.length();
            }
            HookAction action;
            // Set before the call: a hook may complete the request from inside it (a synchronous
            // driver answering its submitBelow, say), and only the hooks above must see that.
            depth[slot] = i;
            try {
                action = qh.hooks[i].beforeDriver(r);
            } catch (RuntimeException | LinkageError | StackOverflowError e) {
                c.errors++;
                moduleFailed(qh.entries[i], "pre-call hook threw on " + r, e);
                depth[slot] = i;
                finish(r, -Errno.EIO);
                return false;
            }
            if (done[slot] == null && action != HookAction.TAKE_OVER) {
                // It completed the request from inside the call and then said otherwise: it is over already.
                c.errors++;
                moduleFailed(qh.entries[i], "pre-call hook completed " + r + " and returned " + action, null);
                return false;
            }
            if (changed(r)) {
                // The layers beneath would get something the guest never sent: stop here, fail it.
                c.errors++;
                moduleFailed(qh.entries[i], "pre-call hook changed the request it was given (" + r
                        + "); a module sends a child request instead", null);
                restore(r);
                depth[slot] = i;
                finish(r, -Errno.EIO);
                return false;
            }
            switch (action) {
                case PASS -> c.passed++;
                case COMPLETE -> {
                    c.completed++;
                    if (r.result() < 0) {
                        c.errors++;
                    }
                    finish(r, r.result());
                    return false;
                }
                case TAKE_OVER -> {
                    c.completed++;
                    return false;
                }
            }
        }
        depth[slot] = qh.size();
        return true;
    }

    private void remember(BlockRequest r) {
        int slot = r.slot();
        opIn[slot] = r.op();
        offsetIn[slot] = r.offset();
        lengthIn[slot] = r.length();
        dataIn[slot] = r.data();
    }

    private boolean changed(BlockRequest r) {
        int slot = r.slot();
        return r.op() != opIn[slot] || r.offset() != offsetIn[slot] || r.length() != lengthIn[slot] || r.data() != dataIn[slot];
    }

    private void restore(BlockRequest r) {
        int slot = r.slot();
        r.set(opIn[slot], offsetIn[slot], lengthIn[slot], dataIn[slot], r.unmap());
    }

    /** The driver finished a request (guest or module-owned). */
    @Override
    public void complete(BlockRequest r, long result) {
        finish(r, shortIsAnError(r, result));
    }

    /** A hook that took {@code r} over finishes it. */
    void completeTakenOver(QueueHookContext by, BlockRequest r, long result) {
        if (result < 0) {
            HookState st = opened.get(by.entry());
            if (st != null) {
                st.counters().errors++;
            }
        }
        finish(r, result);
    }

    /**
     * Point ②: the hooks that passed the request on see the result, innermost first; then whoever
     * submitted it (the virtio-blk handler for a guest request, the module for its own).
     */
    private void finish(BlockRequest r, long result) {
        int slot = r.slot();
        if (done[slot] == null) {
            // A module completing a request twice (or one it never had): the guest sees one answer only.
            LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + ": " + r
                    + " completed while not in flight (completed twice?); ignored");
            return;
        }
        long res = result;
        QueueHooks qh = hooksOf[slot];
        if (qh != null) {
            for (int i = depth[slot] - 1; i >= start[slot]; i--) {
                try {
                    res = qh.hooks[i].afterDriver(r, res);
                } catch (RuntimeException | LinkageError | StackOverflowError e) {
                    qh.counters[i].errors++;
                    moduleFailed(qh.entries[i], "completion hook threw on " + r, e);
                    res = -Errno.EIO;
                }
                if (changed(r)) {
                    qh.counters[i].errors++;
                    moduleFailed(qh.entries[i], "completion hook changed the request it was given (" + r + ")", null);
                    restore(r);
                    res = -Errno.EIO;
                }
            }
            hooksOf[slot] = null;
        }
        DriverCompletion d = done[slot];
        done[slot] = null;
        if (slot >= guestSlots) {
            moduleInFlight--;
        }
        d.complete(r, res);
    }

    /**
     * A driver finishes short transfers itself; one that reports fewer bytes than asked has not
     * moved them all, so the request fails rather than be acknowledged with data missing. Only the
     * driver's result is held to this: a module answers in its own terms.
     */
    private static long shortIsAnError(BlockRequest r, long result) {
        BlockOp op = r.op();
        if (result >= 0 && result < r.length() && (op == BlockOp.READ || op == BlockOp.WRITE)) {
            return -Errno.EIO;
        }
        return result;
    }

    /** The device's chain as this queue runs it; rebuilt (opening new modules' queue hooks) when the chain changed. */
    private QueueHooks queueHooks(HookChain chain) {
        QueueHooks qh = queueHooks;
        if (qh != null && qh.chain == chain) {
            return qh;
        }
        List<ChainEntry> entries = chain.entries();
        BlockHook[] hooks = new BlockHook[entries.size()];
        HookCounters[] counters = new HookCounters[entries.size()];
        for (int i = 0; i < hooks.length; i++) {
            ChainEntry e = entries.get(i);
            HookState st = opened.get(e);
            if (st == null) {
                QueueHookContext context = new QueueHookContext(this, e);
                st = new HookState(e.instance().openQueue(context), e.newQueueCounters(), context);
                opened.put(e, st);
            }
            hooks[i] = st.hook();
            counters[i] = st.counters();
        }
        qh = new QueueHooks(chain, entries.toArray(ChainEntry[]::new), hooks, counters);
        queueHooks = qh;
        return qh;
    }

    /** A new request slot owned by {@code entry} (set-up time: allocates). */
    BlockRequest newModuleRequest(ChainEntry entry, BlockRequest parent) {
        int slot = guestSlots + moduleRequests.size();
        BlockRequest r = new BlockRequest(slot, device.id(), queueIndex, parent);
        moduleRequests.add(r);
        if (slot >= done.length) {
            int n = Math.max(slot + 1, done.length * 2);
            hooksOf = Arrays.copyOf(hooksOf, n);
            start = Arrays.copyOf(start, n);
            depth = Arrays.copyOf(depth, n);
            done = Arrays.copyOf(done, n);
            owner = Arrays.copyOf(owner, n);
            opIn = Arrays.copyOf(opIn, n);
            offsetIn = Arrays.copyOf(offsetIn, n);
            lengthIn = Arrays.copyOf(lengthIn, n);
            dataIn = Arrays.copyOf(dataIn, n);
        }
        owner[slot] = entry;
        return r;
    }

    void post(Runnable task) {
        mailbox.add(task);
        mailboxSignal.signal();
        EventFd doorbell = loopDoorbell;
        if (doorbell != null) {
            doorbell.signal();
        }
    }

    private void moduleFailed(ChainEntry entry, String what, Throwable e) {
        LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + " module=" + entry.name() + ": " + what
                + "; the request fails with an I/O error", e);
        device.disableModule(entry.name(), what + (e == null ? "" : ": " + e));
    }

    BlockDevice device() {
        return device;
    }

    int queueIndex() {
        return queueIndex;
    }

    /** Module-owned and child requests started and not yet finished. */
    int moduleInFlight() {
        int n = moduleInFlight;
        for (int i = 0; i < attached.size(); i++) {
            n += attached.get(i).queue.inFlight();
        }
        return n;
    }

    /** Serves a module's own driver queue on this loop (see {@code HookContext.attach}). */
    void attach(DriverQueue queue, String module) {
        try {
            attached.add(new AttachedQueue(queue, this::post, "vhost-blk-" + device.id() + "-q" + queueIndex + "-" + module));
        } catch (LinuxException e) {
            throw new IllegalStateException(device.label() + " queue=" + queueIndex + " module=" + module
                    + ": cannot watch the module's driver queue: " + e.getMessage(), e);
        }
    }

    /** Stops serving a module's driver queue; the module closes it. */
    void detach(DriverQueue queue) {
        for (int i = 0; i < attached.size(); i++) {
            if (attached.get(i).queue == queue) {
                attached.remove(i).close();
                return;
            }
        }
    }

    void flushBatch() {
        for (int i = 0; i < attached.size(); i++) {
            attached.get(i).queue.flushBatch();
        }
        driverQueue.flushBatch();
    }

    /** Collects finished driver requests and runs tasks modules posted, without blocking; returns how many. */
    int reap() {
        int n = driverQueue.reap();
        for (int i = 0; i < attached.size(); i++) {
            n += attached.get(i).queue.reap();
        }
        if (!mailbox.isEmpty()) {
            Runnable task;
            while ((task = mailbox.poll()) != null) {
                try {
                    task.run();
                } catch (RuntimeException e) {
                    LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + ": a module task failed", e);
                }
                n++;
            }
            // A task may have sent requests below (a request handed over from another queue, a worker's
            // result): submit them now, or a loop that goes to sleep next would never see them complete.
            flushBatch();
        }
        return n;
    }

    int completionFd() {
        return driverQueue.completionFd();
    }

    int mailboxFd() {
        return mailboxSignal.fd();
    }

    KickAware kickAware() {
        return driverQueue instanceof KickAware k ? k : null;
    }

    void alsoSignal(EventFd doorbell) {
        this.loopDoorbell = doorbell;
    }

    void mailboxSeen() {
        mailboxSignal.drain();
    }

    @Override
    public void close() {
        // The loop has exited (the queue stopped): tell each hook, so shared work can move to another queue.
        for (var e : opened.entrySet()) {
            try {
                e.getValue().hook().queueStopped();
            } catch (RuntimeException | LinkageError ex) {
                LOG.log(Level.ERROR, device.label() + " queue=" + queueIndex + " module=" + e.getKey().name()
                        + ": queueStopped threw", ex);
            }
        }
        for (AttachedQueue a : attached) {
            a.close();
            a.queue.close();
        }
        attached.clear();
        driverQueue.close();
        mailboxSignal.close();
    }
}
