"""Structured JSON logs, each line carrying the request id (X-Request-ID in and out)."""

import itertools
import json
import logging
import os
import re
import secrets
import sys
import threading
import time

from flask import g, has_request_context, request

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
_HANDLER_NAME = "glowing_fiesta.json"
# What every LogRecord carries; anything else on a record came as ``extra`` and is logged.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record):
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
            entry["path"] = request.path
            api_key = g.get("api_key")
            if api_key is not None:
                entry["key"] = api_key.prefix
        for name, value in record.__dict__.items():  # extra={...} given to the logger
            if name not in _RECORD_FIELDS and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level):
    """Send the root logger's records to stderr as JSON, once per process."""
    root = logging.getLogger()
    if not any(handler.get_name() == _HANDLER_NAME for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())


class RequestIds:
    """32 hex characters per request: a random prefix per process and a counter (cheaper than
    a uuid4 per request, and as unique)."""

    def __init__(self):
        self._state = (None, None, None)  # (pid, prefix, counter), replaced whole
        self._lock = threading.Lock()

    def next(self):
        """A fresh id."""
        pid, prefix, counter = self._state
        if pid != os.getpid():  # a forked worker starts its own sequence
            with self._lock:
                if self._state[0] != os.getpid():
                    self._state = (os.getpid(), secrets.token_hex(8), itertools.count())
                pid, prefix, counter = self._state
        return f"{prefix}{next(counter):016x}"


_ids = RequestIds()


def _assign_request_id():
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else _ids.next()


def _echo_request_id(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    return response


def init_app(app):
    """Configure JSON logging and the request-id hooks."""
    configure(app.config["LOG_LEVEL"])
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
