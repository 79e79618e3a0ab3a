"""The gunicorn worker: gthread, made fit to face clients directly (no nginx in front).

- A request is read whole in the worker's poller before a thread serves it (its head, and its
  body up to MAX_CONTENT_LENGTH), so a slow client holds no thread; one that has not sent its
  request within REQUEST_READ_TIMEOUT seconds is answered 408 (never sent a byte: closed).
- A connection closed after an answer lingers: the server stops sending but reads and discards
  what the client still sends, for up to the keep-alive timeout, so a client still sending a
  refused body (413) reads its answer instead of a reset. A body over the limit gets a closing
  answer and is never read.
- The errors gunicorn answers itself (a malformed request, a request line or header over its
  limits, a timeout) use the JSON envelope instead of an HTML page.
"""

import errno
import itertools
import json
import selectors
import socket
import time
from functools import partial

from gunicorn import util
from gunicorn.http.body import LengthReader
from gunicorn.http.errors import (
    ForbiddenProxyRequest,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
)
from gunicorn.workers.gthread import TConn, ThreadWorker

from app.config import ConfigError, server_settings
from app.serve.http_reading import CONTINUE, HEAD_LIMIT, DeadlineUnreader, PendingRequest

_STATUS = {
    LimitRequestLine: (400, "Bad Request", "Request line too long"),
    LimitRequestHeaders: (431, "Request Header Fields Too Large", "Request headers too large"),
    ForbiddenProxyRequest: (403, "Forbidden", "Request forbidden"),
}
RECEIVE_BYTES = 64 * 1024
# What a lingering connection may still send before it is closed anyway: a client that keeps
# sending after its answer is not reading it.
LINGER_BYTES = 16 * 1024 * 1024


def error_bytes(status, reason, code, message):
    """A complete HTTP/1.1 response carrying the JSON error envelope; the connection closes."""
    body = json.dumps({"success": False, "error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def address(client):
    """A client's address for the log (empty on a Unix socket)."""
    return (client or ("",))[0]


class BufferedConn(TConn):
    """A client connection: the request being read in the poller (``pending``, with its
    ``deadline``), or ``lingering`` after a closing answer."""

    def __init__(self, cfg, sock, client, server):
        super().__init__(cfg, sock, client, server)
        self.pending = None
        self.deadline = 0.0
        self.lingering = False
        self.discarded = 0

    def init(self):
        """Before a thread serves it: hand the bytes read so far to gunicorn's parser."""
        fresh = self.parser is None
        super().init()
        if fresh:
            self.parser.unreader = DeadlineUnreader(self.sock)
        self.parser.unreader.deadline = self.deadline
        self.parser.unreader.unread(bytes(self.pending.data))
        self.pending = None


class BufferingWorker(ThreadWorker):
    """gthread worker that reads requests in its poller and answers its own errors in JSON."""

    @classmethod
    def check_config(cls, cfg, log):
        """Refuse TLS: requests are read as plain bytes before a thread sees them."""
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise ConfigError("the app server speaks plain HTTP; TLS ends at nginx")

    def init_process(self):
        """Read the settings, then run gthread's loop."""
        settings = server_settings()
        self.read_timeout = settings["request_read_timeout"]
        self.body_limit = settings["max_content_length"]
        self.reading = {}  # connections whose request is being read, by deadline
        super().init_process()

    def accept(self, server, listener):
        """Take a new connection; its first request is read in the poller."""
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = BufferedConn(self.cfg, sock, client, server)
        self.nr_conns += 1
        self._start_reading(conn)
        with self._lock:
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn)
            )

    def _start_reading(self, conn):
        conn.pending = PendingRequest(self.body_limit)
        conn.deadline = time.monotonic() + self.read_timeout
        self.reading[conn] = None

    def on_client_socket_readable(self, conn, client):
        """Read what arrived: a request (handed to a thread once whole), or what a lingering
        connection still sends (discarded)."""
        if conn.pending is None and not conn.lingering:  # an idle keep-alive connection
            with self._lock:
                if conn not in self._keep:
                    return  # closed as idle meanwhile
                self._keep.remove(conn)
            self._start_reading(conn)
        try:
            chunk = conn.sock.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""  # reset: as good as closed
        if conn.lingering:
            self._discard(conn, chunk)
        elif chunk:
            self._read(conn, chunk)
        elif conn.pending.data:
            self._dispatch(conn)  # sent all it will: what is missing, gunicorn or the app says
        else:
            self._close(conn)

    def _read(self, conn, chunk):
        conn.pending.feed(chunk)
        if conn.pending.head_too_large:
            self.log.warning(
                "invalid request from %s: headers over %s bytes", address(conn.client), HEAD_LIMIT
            )
            message = "Request headers too large"
            self._refuse(conn, 431, "Request Header Fields Too Large", "VALIDATION_ERROR", message)
        elif conn.pending.ready:
            self._dispatch(conn)
        elif conn.pending.continue_due():
            self._send(conn, CONTINUE)

    def _dispatch(self, conn):
        """Hand the connection to a thread, with what was read of its request."""
        self.reading.pop(conn)
        with self._lock:
            self.poller.unregister(conn.sock)
        self.enqueue_req(conn)

    def _discard(self, conn, chunk):
        conn.discarded += len(chunk)
        if not chunk or conn.discarded > LINGER_BYTES:
            self._close(conn)

    def _send(self, conn, data):
        """Send a short answer from the poller (the socket is non-blocking); False if it failed."""
        try:
            conn.sock.send(data)
        except OSError:
            return False
        return True

    def _refuse(self, conn, status, reason, code, message):
        """Answer a request the poller gives up on, and linger."""
        self.reading.pop(conn, None)
        conn.pending = None
        if self._send(conn, error_bytes(status, reason, code, message)) and self._linger(conn):
            conn.set_timeout()  # lingering ends with the keep-alive timeout
            with self._lock:
                self._keep.append(conn)
        else:
            self._close(conn)

    def _close(self, conn):
        """Forget a connection the poller holds, and close it."""
        self.reading.pop(conn, None)
        with self._lock:
            self.poller.unregister(conn.sock)
            if conn in self._keep:
                self._keep.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self):
        """Close idle keep-alive and lingering connections (gunicorn), and give up on requests
        not received within the read timeout."""
        super().murder_keepalived()
        now = time.monotonic()
        for conn in list(itertools.takewhile(lambda c: c.deadline <= now, self.reading)):
            if not conn.pending.data:
                self._close(conn)  # never sent a byte: nothing to answer
                continue
            self.log.info(
                "request from %s not received within %s s", address(conn.client), self.read_timeout
            )
            message = f"The request was not received within {self.read_timeout} s"
            self._refuse(conn, 408, "Request Timeout", "BAD_REQUEST", message)

    def handle(self, conn):
        """Serve one request on a thread; a connection closing after it lingers, and a
        keep-alive one first reads what the app left of the request's body."""
        keepalive, conn = super().handle(conn)
        if keepalive and self._finish_body(conn.parser.mesg, conn.parser.unreader):
            return True, conn
        return self._linger(conn), conn

    def _finish_body(self, req, unreader):
        """Read the rest of ``req``'s body from what arrived with it; False if more is due or
        more came (a pipelined request): the connection then closes, as the poller must see
        each request from its first byte."""
        unreader.deadline = 0.0  # no waiting on the client here
        try:
            while req.body.read(RECEIVE_BYTES):
                pass
        except (OSError, ParseException):
            return False
        return not unreader.buf.getvalue()

    def _linger(self, conn):
        """Stop sending but go on reading, in the poller (True), unless the socket is gone."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return False
        conn.lingering = True
        return True

    def handle_request(self, req, conn):
        """Serve ``req``: a body over the limit gets a closing answer; ``Expect:
        100-continue`` was answered in the poller (or, for a body refused, is not)."""
        reader = req.body.reader
        if isinstance(reader, LengthReader) and reader.length > self.body_limit:
            req.must_close = True
        req.headers = [(name, value) for name, value in req.headers if name != "EXPECT"]
        return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc):
        """Answer a request gunicorn could not hand to the app."""
        known = next((v for kind, v in _STATUS.items() if isinstance(exc, kind)), None)
        if known:
            status, reason, message = known
        elif isinstance(exc, ParseException):
            status, reason, message = 400, "Bad Request", f"Malformed request: {exc}"
        else:
            self.log.exception("error handling request")
            status, reason, message = 500, "Internal Server Error", "Internal server error"
        code = "INTERNAL_ERROR" if status == 500 else "VALIDATION_ERROR"
        if status < 500:
            self.log.warning("invalid request from %s: %s", address(addr), exc)
        try:
            util.write_nonblock(client, error_bytes(status, reason, code, message))
        except OSError:
            pass  # the client is gone
