package io.vhostblk.frontend;

import io.vhostblk.linux.UnixSocket;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CONFIG_CHANGE_MSG on the back-end channel, against a hand-played front-end end of the socket pair. */
class BackendChannelTest {

    /** Reads the back-end's message as the front-end would and checks its form. */
    private static VhostUserMessage receive(VhostUserChannel frontEnd, boolean needReply) throws Exception {
        VhostUserMessage m = frontEnd.receive(false);
        assertNotNull(m);
        assertEquals(BackendChannel.CONFIG_CHANGE_MSG, m.code());
        assertEquals(0, m.payloadSize());
        assertEquals(needReply, m.needsReply());
        return m;
    }

    @Test
    void withReplyAckTheAnswerIsWaitedForAndReported() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (BackendChannel backend = new BackendChannel("dev", pair[0], true, 10_000);
             VhostUserChannel frontEnd = new VhostUserChannel(pair[1])) {
            CompletableFuture<String> told = CompletableFuture.supplyAsync(backend::configChanged);
            VhostUserMessage m = receive(frontEnd, true);
            frontEnd.send(m.reply(VhostUserMessage.u64(0)));
            assertEquals("guest notified", told.get());

            told = CompletableFuture.supplyAsync(backend::configChanged);
            m = receive(frontEnd, true);
            frontEnd.send(m.reply(VhostUserMessage.u64(1)));
            assertEquals("front-end reported failure (status 1)", told.get());
        }
    }

    @Test
    void aFrontEndThatNeverAnswersDoesNotHangAndItsLateAnswerIsNotTakenForTheNextOne() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (BackendChannel backend = new BackendChannel("dev", pair[0], true, 50);
             VhostUserChannel frontEnd = new VhostUserChannel(pair[1])) {
            assertEquals("front-end did not answer within 50 ms", backend.configChanged());
            VhostUserMessage first = receive(frontEnd, true);
            // The late answer to the first message (success) arrives before the second one goes out.
            frontEnd.send(first.reply(VhostUserMessage.u64(0)));
            CompletableFuture<String> told = CompletableFuture.supplyAsync(backend::configChanged);
            VhostUserMessage second = receive(frontEnd, true);
            frontEnd.send(second.reply(VhostUserMessage.u64(7)));
            assertEquals("front-end reported failure (status 7)", told.get(), "the second answer, not the late first");
        }
    }

    @Test
    void withoutReplyAckNothingIsAwaitedAndAClosedChannelIsReportedNotThrown() throws Exception {
        UnixSocket[] pair = UnixSocket.pair();
        try (BackendChannel backend = new BackendChannel("dev", pair[0], false, 10_000);
             VhostUserChannel frontEnd = new VhostUserChannel(pair[1])) {
            assertTrue(backend.configChanged().startsWith("guest notified (front-end did not negotiate REPLY_ACK"));
            receive(frontEnd, false);
            backend.close();
            assertTrue(backend.configChanged().startsWith("back-end channel failed"));
        }
    }
}
