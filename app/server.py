"""The gunicorn worker: gthread, but the errors gunicorn answers itself (a malformed request,
a request line or header over its limits) use our JSON envelope instead of an HTML page."""

import json

from gunicorn import util
from gunicorn.http.errors import (
    ForbiddenProxyRequest,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
)
from gunicorn.workers.gthread import ThreadWorker

_STATUS = {
    LimitRequestLine: (400, "Bad Request", "Request line too long"),
    LimitRequestHeaders: (431, "Request Header Fields Too Large", "Request headers too large"),
    ForbiddenProxyRequest: (403, "Forbidden", "Request forbidden"),
}


def error_bytes(status, reason, code, message):
    """A complete HTTP/1.1 response carrying the JSON error envelope; the connection closes."""
    body = json.dumps({"success": False, "error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorWorker(ThreadWorker):
    """gthread worker whose own error responses are JSON."""

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
            self.log.warning("invalid request from %s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, error_bytes(status, reason, code, message))
        except OSError:
            pass  # the client is gone
