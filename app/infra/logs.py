"""Logs: one JSON object per line (LOG_FORMAT=json, the default) or readable text lines
(LOG_FORMAT=text), for everything the processes write — gunicorn's own lines too, through
``gunicorn.conf.py`` — and exactly one access record per request (``glowing_fiesta.access``:
request id, method, route template, status, duration, client address, key prefix; never a
key, never a query string, which may hold one). X-Request-ID comes in and goes out.
"""

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
_HANDLER_NAME = "glowing_fiesta.handler"
ACCESS_LOGGER = "glowing_fiesta.access"
access_log = logging.getLogger(ACCESS_LOGGER)
# What every LogRecord carries; anything else on a record came as ``extra`` and is logged.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _fields(record):
    """A record as a dict: time, level, logger, message, request context, extras."""
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    if has_request_context():
        entry["request_id"] = g.get("request_id")
        # The route's template, never the path: a path names metrics (and keys go nowhere).
        entry["route"] = request.url_rule.rule if request.url_rule is not None else None
        api_key = g.get("api_key")
        if api_key is not None:
            entry["key"] = api_key.prefix
    for name, value in record.__dict__.items():  # extra={...} given to the logger
        if name not in _RECORD_FIELDS and name not in entry:
            entry[name] = value
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record):
        entry = _fields(record)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [request id] message key=value…`` for reading in a terminal."""

    def format(self, record):
        entry = _fields(record)
        head = f"{entry.pop('time')} {entry.pop('level'):<7} {entry.pop('logger')}"
        request_id = entry.pop("request_id", None)
        message = entry.pop("message")
        rest = " ".join(f"{k}={v}" for k, v in entry.items())
        line = f"{head} [{request_id}] {message}" if request_id else f"{head} {message}"
        line = f"{line} {rest}" if rest else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def configure(level, fmt="json"):
    """Send the root logger's records to stderr in ``fmt``, once per process."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    handler.setFormatter(FORMATTERS[fmt]())
    root.setLevel(level.upper())


def gunicorn_logconfig(level, fmt):
    """gunicorn's ``logconfig_dict``: its own lines in the same format as the app's."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "service",
        "stream": "ext://sys.stderr",
    }
    logger = {"level": level.upper(), "handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": {"()": f"app.infra.logs.{FORMATTERS[fmt].__name__}"}},
        "handlers": {"stderr": handler},
        # The app writes the access records (without query strings, which may hold a key).
        "loggers": {
            "gunicorn.error": logger,
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
        "root": {"level": level.upper(), "handlers": []},
    }


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
    g.request_started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else _ids.next()


def _finish_request(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if access_log.isEnabledFor(logging.INFO):
        started = g.get("request_started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else None
        access_log.info(
            "%s %s %s",
            request.method,
            route or "(no route)",
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "client": request.remote_addr,
            },
        )
    return response


def init_app(app):
    """Configure logging and the request-id and access-record hooks."""
    configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    app.before_request(_assign_request_id)
    app.after_request(_finish_request)
