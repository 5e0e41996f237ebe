package io.vhostblk.linux;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class EventFdTest {
    @Test
    void aBlockingEventFdMadeNonBlockingReportsEagainWhenEmptyInsteadOfWaiting() throws Exception {
        try (EventFd e = EventFd.create(false)) {
            assertEquals(0, e.makeNonBlocking());
            assertEquals(Libc.O_NONBLOCK, Libc.fcntl(e.fd(), Libc.F_GETFL, 0) & Libc.O_NONBLOCK);
            assertEquals(-Errno.EAGAIN, e.drain(), "empty: no wait");
            e.signal();
            e.signal();
            assertEquals(2, e.drain());
            assertEquals(-Errno.EAGAIN, e.drain(), "a second drain after one read took both kicks");
            assertEquals(0, e.makeNonBlocking(), "idempotent");
        }
    }
}
