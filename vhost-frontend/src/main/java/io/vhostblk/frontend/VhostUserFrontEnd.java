package io.vhostblk.frontend;

import io.vhostblk.linux.UnixSocket;

import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The front-end side of a vhost-user connection (what QEMU does), for tests and benchmarks that
 * drive a back-end directly: typed calls for the setup sequence plus raw {@link #send} and
 * {@link #receiveReply} for anything else.
 */
public final class VhostUserFrontEnd implements AutoCloseable {
    private final VhostUserChannel channel;
    private boolean replyAck;

    public VhostUserFrontEnd(UnixSocket socket) {
        this.channel = new VhostUserChannel(socket);
    }

    public static VhostUserFrontEnd connect(Path socketPath) throws IOException {
        return new VhostUserFrontEnd(UnixSocket.connect(socketPath));
    }

    public VhostUserChannel channel() {
        return channel;
    }

    /** Once REPLY_ACK is negotiated, setters ask for and check an acknowledgement. */
    public void useReplyAck(boolean enabled) {
        this.replyAck = enabled;
    }

    /** Sends a request as is (descriptors stay open on this side). */
    public void send(VhostUserRequest request, boolean needReply, byte[] payload, int... fds) throws IOException {
        channel.send(VhostUserMessage.request(request, needReply, payload, fds));
    }

    /** Receives the reply to {@code request}, checking it answers that request. */
    public VhostUserMessage receiveReply(VhostUserRequest request) throws IOException, VhostUserException {
        VhostUserMessage reply = channel.receive(true);
        if (reply == null) {
            throw new EOFException("back-end closed the connection before replying to " + request.wireName());
        }
        if (reply.code() != request.code()) {
            reply.closeUnclaimedFds();
            throw new VhostUserException("reply to " + request.wireName() + " answers " + reply.name());
        }
        return reply;
    }

    /** A request with a u64 reply (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, ...). */
    public long getU64(VhostUserRequest request) throws IOException, VhostUserException {
        send(request, false, new byte[0]);
        VhostUserMessage reply = receiveReply(request);
        reply.requirePayloadSize(8);
        return reply.payload().getLong();
    }

    /** A request without a reply body; with REPLY_ACK on, waits for and checks the acknowledgement. */
    public void set(VhostUserRequest request, byte[] payload, int... fds) throws IOException, VhostUserException {
        send(request, replyAck, payload, fds);
        if (replyAck) {
            VhostUserMessage ack = receiveReply(request);
            ack.requirePayloadSize(8);
            long status = ack.payload().getLong();
            if (status != 0) {
                throw new VhostUserException(request.wireName() + " failed on the back-end (status " + status + ")");
            }
        }
    }

    public long getFeatures() throws IOException, VhostUserException {
        return getU64(VhostUserRequest.GET_FEATURES);
    }

    public void setFeatures(long features) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_FEATURES, VhostUserMessage.u64(features));
    }

    public long getProtocolFeatures() throws IOException, VhostUserException {
        return getU64(VhostUserRequest.GET_PROTOCOL_FEATURES);
    }

    /** Sets protocol features; never asks for an ack, as REPLY_ACK itself is only now being negotiated. */
    public void setProtocolFeatures(long features) throws IOException {
        send(VhostUserRequest.SET_PROTOCOL_FEATURES, false, VhostUserMessage.u64(features));
    }

    public void setOwner() throws IOException, VhostUserException {
        set(VhostUserRequest.SET_OWNER, new byte[0]);
    }

    public void setMemTable(MemoryTable table, int... fds) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_MEM_TABLE, table.encode(), fds);
    }

    public void setVringNum(int index, int num) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_VRING_NUM, new VringState(index, num).encode());
    }

    public void setVringBase(int index, int base) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_VRING_BASE, new VringState(index, base).encode());
    }

    public void setVringAddr(VringAddress address) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_VRING_ADDR, address.encode());
    }

    /** SET_VRING_KICK; {@code fd < 0} sends the no-descriptor (polling) form. */
    public void setVringKick(int index, int fd) throws IOException, VhostUserException {
        setVringFile(VhostUserRequest.SET_VRING_KICK, index, fd);
    }

    /** SET_VRING_CALL; {@code fd < 0} sends the no-descriptor form. */
    public void setVringCall(int index, int fd) throws IOException, VhostUserException {
        setVringFile(VhostUserRequest.SET_VRING_CALL, index, fd);
    }

    private void setVringFile(VhostUserRequest request, int index, int fd) throws IOException, VhostUserException {
        if (fd < 0) {
            set(request, VhostUserMessage.u64((index & 0xff) | 0x100L));
        } else {
            set(request, VhostUserMessage.u64(index & 0xff), fd);
        }
    }

    public void setVringEnable(int index, boolean enable) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_VRING_ENABLE, new VringState(index, enable ? 1 : 0).encode());
    }

    /** GET_VRING_BASE: stops the ring and returns the next avail index it would have processed. */
    public int getVringBase(int index) throws IOException, VhostUserException {
        send(VhostUserRequest.GET_VRING_BASE, false, new VringState(index, 0).encode());
        VringState state = VringState.decode(receiveReply(VhostUserRequest.GET_VRING_BASE));
        if (state.index() != index) {
            throw new VhostUserException("GET_VRING_BASE reply is for vring " + state.index() + ", asked " + index);
        }
        return state.num();
    }

    /** GET_CONFIG for [offset, offset+size); returns null if the back-end answered with the empty error reply. */
    public byte[] getConfig(int offset, int size) throws IOException, VhostUserException {
        send(VhostUserRequest.GET_CONFIG, false, new ConfigWindow(offset, size, 0, new byte[size]).encode());
        VhostUserMessage reply = receiveReply(VhostUserRequest.GET_CONFIG);
        if (reply.payloadSize() == 0) {
            return null;
        }
        return ConfigWindow.decode(reply).data();
    }

    public void setConfig(int offset, byte[] data) throws IOException, VhostUserException {
        set(VhostUserRequest.SET_CONFIG, new ConfigWindow(offset, data.length, 0, data).encode());
    }

    @Override
    public void close() {
        channel.close();
    }
}
