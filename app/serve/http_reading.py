"""Reading requests off the socket for the gunicorn worker (app/server.py): whole, in its poller,
before a thread sees them; and, in a thread, never past a deadline."""

import time

from gunicorn.http.unreader import SocketUnreader

# Bytes of request line and headers one request may take. Real clients send well under 8 KiB
# (nginx's default header buffers hold 32 KiB); gunicorn's parser refuses most heads this long.
HEAD_LIMIT = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class RequestTimeout(TimeoutError):
    """The client did not send its request in time (an OSError, as a dropped client is: the app
    answers a body read that fails so with 400)."""


class PendingRequest:
    """The bytes of one request as they arrive, and whether they are enough for a thread to
    serve it without waiting on the client. A head is only looked at: gunicorn's parser, on the
    thread, decides what the request is (and refuses what it must)."""

    def __init__(self, body_limit):
        self.data = bytearray()
        self.body_limit = body_limit
        self.head_end = -1  # where the blank line after the headers starts, once it arrived
        self.body_length = 0  # None: chunked, complete at its last chunk
        self.expects_continue = False
        self.continued = False

    def feed(self, chunk):
        """Add bytes that arrived."""
        searched = max(len(self.data) - 3, 0)  # the blank line may straddle two reads
        self.data += chunk
        if self.head_end < 0:
            self.head_end = self.data.find(b"\r\n\r\n", searched)
            if self.head_end >= 0:
                self._read_head(bytes(self.data[: self.head_end]))

    def _read_head(self, head):
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields.setdefault(name.strip().lower(), []).append(value.strip().lower())
        lengths = fields.get(b"content-length", [])
        if b"transfer-encoding" in fields:
            self.body_length = 0 if lengths else None  # both: gunicorn refuses it at once
        elif len(lengths) == 1 and lengths[0].isdigit():
            self.body_length = int(lengths[0])
        self.expects_continue = fields.get(b"expect") == [b"100-continue"]

    @property
    def head_too_large(self):
        """No end of headers within ``HEAD_LIMIT``."""
        return self.head_end < 0 and len(self.data) > HEAD_LIMIT

    @property
    def oversized(self):
        """The body's length is over the limit: the app answers 413 without reading it."""
        return self.body_length is not None and self.body_length > self.body_limit

    @property
    def ready(self):
        """Whether a thread can serve the request from what arrived."""
        if self.head_end < 0:
            return False
        received = len(self.data) - self.head_end - 4
        if self.body_length is None:  # the last chunk ends in a blank line (after any trailers)
            done = received >= 5 and self.data.endswith(b"\r\n\r\n")
            return done or received > 2 * self.body_limit  # the app refuses it unread
        return self.oversized or received >= self.body_length

    def continue_due(self):
        """Whether to answer ``Expect: 100-continue`` now (once, and never for a body refused)."""
        if self.continued or not self.expects_continue or self.ready:
            return False
        self.continued = True
        return True


class DeadlineUnreader(SocketUnreader):
    """gunicorn's socket reader for one connection, giving up at ``deadline`` (monotonic
    seconds): a thread reading a slow client's request is held until then at most."""

    deadline = 0.0

    def chunk(self):
        """The next bytes from the socket, waiting no later than the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout("the request was not received in time")
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(self.mxchunk)
        except TimeoutError:
            raise RequestTimeout("the request was not received in time") from None
        finally:
            self.sock.settimeout(None)  # writing the answer waits as long as it takes
