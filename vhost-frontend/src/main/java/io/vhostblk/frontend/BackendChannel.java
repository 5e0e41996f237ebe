package io.vhostblk.frontend;

import io.vhostblk.linux.Errno;
import io.vhostblk.linux.Libc;
import io.vhostblk.linux.UnixSocket;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The back-end → front-end channel (VHOST_USER_SET_BACKEND_REQ_FD, once called the slave
 * channel): here it carries VHOST_USER_BACKEND_CONFIG_CHANGE_MSG, sent when the device's config
 * space changed (a resize). With REPLY_ACK the front-end answers once it has re-read the config
 * and told the guest; a front-end that never answers is waited for at most
 * {@code replyTimeoutMillis}, and its late answer is discarded before the next message.
 */
public final class BackendChannel implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(BackendChannel.class.getName());

    /** Back-end request numbers (a space of their own, not {@link VhostUserRequest}'s). */
    public static final int CONFIG_CHANGE_MSG = 2;

    private final String deviceId;
    private final VhostUserChannel channel;
    private final boolean replyAck;
    private final long replyTimeoutMillis;
    /** Replies still owed by the front-end for messages we stopped waiting for. */
    private int unanswered;
    private boolean closed;

    /**
     * @param replyAck whether REPLY_ACK was negotiated (then every message asks for an answer)
     */
    public BackendChannel(String deviceId, UnixSocket socket, boolean replyAck, long replyTimeoutMillis) {
        this.deviceId = deviceId;
        this.channel = new VhostUserChannel(socket);
        this.replyAck = replyAck;
        this.replyTimeoutMillis = replyTimeoutMillis;
    }

    /**
     * Sends CONFIG_CHANGE_MSG and, with REPLY_ACK, waits (bounded) for the answer. Never throws:
     * returns what happened, for the operator.
     */
    public synchronized String configChanged() {
        if (closed) {
            return "back-end channel failed: it is closed";
        }
        try {
            discardLateReplies();
            int flags = VhostUserProtocol.VERSION | (replyAck ? VhostUserProtocol.FLAG_NEED_REPLY : 0);
            channel.send(new VhostUserMessage(CONFIG_CHANGE_MSG, flags, new byte[0], new int[0]));
            if (!replyAck) {
                return "guest notified (front-end did not negotiate REPLY_ACK: not confirmed)";
            }
            if (!readable(replyTimeoutMillis)) {
                unanswered++;
                LOG.log(Level.WARNING, "device " + deviceId + ": the front-end did not answer CONFIG_CHANGE_MSG within "
                        + replyTimeoutMillis + " ms");
                return "front-end did not answer within " + replyTimeoutMillis + " ms";
            }
            long status = readReply();
            return status == 0 ? "guest notified" : "front-end reported failure (status " + status + ")";
        } catch (IOException | VhostUserException e) {
            LOG.log(Level.WARNING, "device " + deviceId + ": CONFIG_CHANGE_MSG failed: " + e.getMessage());
            return "back-end channel failed: " + e.getMessage();
        }
    }

    private void discardLateReplies() throws IOException, VhostUserException {
        while (unanswered > 0 && readable(0)) {
            readReply();
            unanswered--;
        }
    }

    /** Reads one reply to CONFIG_CHANGE_MSG and returns its u64 status. */
    private long readReply() throws IOException, VhostUserException {
        VhostUserMessage reply = channel.receive(true);
        if (reply == null) {
            throw new IOException("the front-end closed the back-end channel");
        }
        reply.closeUnclaimedFds();
        if (reply.code() != CONFIG_CHANGE_MSG || reply.payloadSize() != 8) {
            throw new VhostUserException("unexpected reply on the back-end channel: request " + reply.code()
                    + ", " + reply.payloadSize() + " bytes");
        }
        return reply.payload().getLong();
    }

    private boolean readable(long timeoutMillis) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pollFd = arena.allocate(Libc.POLLFD);
            pollFd.set(ValueLayout.JAVA_INT, 0, channel.socket().fd());
            pollFd.set(ValueLayout.JAVA_SHORT, 4, Libc.POLLIN);
            long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
            while (true) {
                int wait = (int) Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
                int rc = Libc.poll(pollFd, 1, wait);
                if (rc == -Errno.EINTR) {
                    continue;
                }
                Libc.check("poll", rc, "back-end channel of device " + deviceId);
                return rc > 0;
            }
        }
    }

    /** Wakes a thread waiting for an answer, then closes the socket. Idempotent. */
    @Override
    public void close() {
        channel.socket().shutdown();
        synchronized (this) {
            if (!closed) {
                closed = true;
                channel.close();
            }
        }
    }
}
